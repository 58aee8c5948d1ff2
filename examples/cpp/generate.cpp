// lfm2vl from C++17: the C API behind small RAII owners; streams a greedy
// reply to one prompt (and an optional image), then prints the ids.
//
//   g++ -std=c++17 -I crates/capi/include examples/cpp/generate.cpp
//       -L target/release -llfm2vl -o generate_cpp   (one line)
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

#include "lfm2vl.h"

namespace {

struct ModelFree {
    void operator()(lfm2vl_model *m) const { lfm2vl_model_free(m); }
};
using Model = std::unique_ptr<lfm2vl_model, ModelFree>;

struct Result {
    lfm2vl_result r{};
    ~Result() { lfm2vl_result_free(&r); }
};

void check(lfm2vl_status st, const char *what) {
    if (st != LFM2VL_OK) {
        throw std::runtime_error(std::string(what) + ": " + lfm2vl_last_error());
    }
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s MODEL PROMPT [IMAGE]\n", argv[0]);
        return 2;
    }
    try {
        lfm2vl_model_params mp = lfm2vl_model_default_params();
        mp.backend = "cpu";
        mp.max_len = 1024;
        lfm2vl_model *raw = nullptr;
        check(lfm2vl_model_load(argv[1], &mp, &raw), "load");
        Model model(raw);
        lfm2vl_image image{};
        image.path = argc > 3 ? argv[3] : nullptr;
        lfm2vl_generate_params gp = lfm2vl_generate_default_params();
        gp.max_new_tokens = 16;
        auto on_piece = [](const char *piece, void *) -> bool {
            std::fputs(piece, stdout);
            return true;
        };
        Result out;
        check(lfm2vl_generate(model.get(), argv[2], &image, argc > 3 ? 1 : 0, &gp, on_piece,
                              nullptr, &out.r),
              "generate");
        std::printf("\nids:");
        for (size_t i = 0; i < out.r.n_ids; i++) {
            std::printf(" %u", static_cast<unsigned>(out.r.ids[i]));
        }
        std::printf("\n");
    } catch (const std::exception &e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}
