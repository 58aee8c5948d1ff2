/* lfm2vl from C: load a model, one image (optional) and a prompt, stream the
 * reply to stdout, then print the generated ids on a line of their own.
 *
 *   cc -std=c11 -I crates/capi/include examples/c/generate.c \
 *      -L target/release -llfm2vl -o generate
 *   LD_LIBRARY_PATH=target/release ./generate MODEL "Describe it." [IMAGE.png]
 */
#include <stdio.h>
#include <stdlib.h>

#include "lfm2vl.h"

static bool on_piece(const char *piece, void *user) {
    (void)user;
    fputs(piece, stdout);
    fflush(stdout);
    return true;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL PROMPT [IMAGE]\n", argv[0]);
        return 2;
    }
    lfm2vl_model_params mp = lfm2vl_model_default_params();
    mp.backend = "cpu";
    mp.max_len = 1024;
    lfm2vl_model *model = NULL;
    if (lfm2vl_model_load(argv[1], &mp, &model) != LFM2VL_OK) {
        fprintf(stderr, "load: %s\n", lfm2vl_last_error());
        return 1;
    }
    lfm2vl_image image = {0};
    image.path = argc > 3 ? argv[3] : NULL;
    lfm2vl_generate_params gp = lfm2vl_generate_default_params(); /* greedy */
    gp.max_new_tokens = 16;
    lfm2vl_result result = {0};
    lfm2vl_status st = lfm2vl_generate(model, argv[2], &image, argc > 3 ? 1 : 0, &gp,
                                       on_piece, NULL, &result);
    if (st != LFM2VL_OK) {
        fprintf(stderr, "generate (%d): %s\n", (int)st, lfm2vl_last_error());
        lfm2vl_model_free(model);
        return 1;
    }
    printf("\nids:");
    for (size_t i = 0; i < result.n_ids; i++) {
        printf(" %u", (unsigned)result.ids[i]);
    }
    printf("\n");
    lfm2vl_result_free(&result);
    lfm2vl_model_free(model);
    return 0;
}
