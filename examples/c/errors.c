/* Every bad input from C is a status and a message, never a crash:
 * NULL handles and pointers, a bad path, a corrupt file, a zero-size image,
 * a bad setting, malformed chat messages or tools. Prints one line per case: "<status> <message>".
 *
 *   ./errors MODEL CORRUPT_FILE
 */
#include <stdio.h>
#include <string.h>

#include "lfm2vl.h"

static int failures = 0;

static void expect(const char *name, lfm2vl_status got, lfm2vl_status want) {
    const char *msg = lfm2vl_last_error();
    printf("%s: %d %s\n", name, (int)got, msg);
    if (got != want || msg == NULL || msg[0] == '\0') {
        printf("  UNEXPECTED (wanted %d with a message)\n", (int)want);
        failures++;
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL CORRUPT_FILE\n", argv[0]);
        return 2;
    }
    lfm2vl_model *model = NULL;
    lfm2vl_model_params mp = lfm2vl_model_default_params();
    mp.backend = "cpu";
    mp.max_len = 512;
    expect("null path", lfm2vl_model_load(NULL, &mp, &model), LFM2VL_ERROR_ARGUMENT);
    expect("null out", lfm2vl_model_load(argv[1], &mp, NULL), LFM2VL_ERROR_ARGUMENT);
    expect("bad path", lfm2vl_model_load("/no/such/model", &mp, &model), LFM2VL_ERROR_LOAD);
    if (model != NULL) {
        printf("  UNEXPECTED: a handle after a failed load\n");
        failures++;
    }
    expect("corrupt file", lfm2vl_model_load(argv[2], &mp, &model), LFM2VL_ERROR_LOAD);
    mp.backend = "quantum";
    expect("bad backend", lfm2vl_model_load(argv[1], &mp, &model), LFM2VL_ERROR_ARGUMENT);
    mp.backend = "cpu";

    lfm2vl_result result;
    memset(&result, 0, sizeof result);
    expect("null model", lfm2vl_generate(NULL, "hi", NULL, 0, NULL, NULL, NULL, &result),
           LFM2VL_ERROR_ARGUMENT);
    expect("null model reset", lfm2vl_reset(NULL), LFM2VL_ERROR_ARGUMENT);
    lfm2vl_model *fork = NULL;
    expect("null model fork", lfm2vl_model_fork(NULL, &fork), LFM2VL_ERROR_ARGUMENT);
    expect("null model chat", lfm2vl_chat(NULL, "[]", NULL, 0, NULL, NULL, NULL, &result),
           LFM2VL_ERROR_ARGUMENT);

    if (lfm2vl_model_load(argv[1], &mp, &model) != LFM2VL_OK) {
        printf("load: %s\n", lfm2vl_last_error());
        return 1;
    }
    expect("null prompt", lfm2vl_generate(model, NULL, NULL, 0, NULL, NULL, NULL, &result),
           LFM2VL_ERROR_ARGUMENT);
    expect("null out", lfm2vl_generate(model, "hi", NULL, 0, NULL, NULL, NULL, NULL),
           LFM2VL_ERROR_ARGUMENT);
    expect("null images", lfm2vl_generate(model, "hi", NULL, 2, NULL, NULL, NULL, &result),
           LFM2VL_ERROR_ARGUMENT);
    unsigned char pixel[4] = {1, 2, 3, 4};
    lfm2vl_image empty = {NULL, pixel, 0, 0, 0, 3};
    expect("zero-size image", lfm2vl_generate(model, "hi", &empty, 1, NULL, NULL, NULL, &result),
           LFM2VL_ERROR_IMAGE);
    lfm2vl_image two = {NULL, pixel, 1, 1, 0, 2};
    expect("two channels", lfm2vl_generate(model, "hi", &two, 1, NULL, NULL, NULL, &result),
           LFM2VL_ERROR_IMAGE);
    lfm2vl_image missing = {"/no/such/image.png", NULL, 0, 0, 0, 0};
    expect("missing image", lfm2vl_generate(model, "hi", &missing, 1, NULL, NULL, NULL, &result),
           LFM2VL_ERROR_IMAGE);
    lfm2vl_generate_params gp = lfm2vl_generate_default_params();
    gp.temperature = 1.0f;
    gp.top_p = 7.0f;
    expect("bad top_p", lfm2vl_generate(model, "hi", NULL, 0, &gp, NULL, NULL, &result),
           LFM2VL_ERROR_ARGUMENT);
    gp = lfm2vl_generate_default_params();
    gp.json_schema = "{\"type\": \"nope\"}";
    expect("bad schema", lfm2vl_generate(model, "hi", NULL, 0, &gp, NULL, NULL, &result),
           LFM2VL_ERROR_GENERATE);
    gp = lfm2vl_generate_default_params();
    gp.tools = "{\"not\": \"a list\"}";
    expect("tools not a list", lfm2vl_generate(model, "hi", NULL, 0, &gp, NULL, NULL, &result),
           LFM2VL_ERROR_ARGUMENT);
    gp.tools = NULL;
    gp.tool_choice = "required";
    expect("tool_choice alone", lfm2vl_generate(model, "hi", NULL, 0, &gp, NULL, NULL, &result),
           LFM2VL_ERROR_ARGUMENT);
    gp = lfm2vl_generate_default_params();
    expect("null messages", lfm2vl_chat(model, NULL, NULL, 0, NULL, NULL, NULL, &result),
           LFM2VL_ERROR_ARGUMENT);
    expect("messages not JSON", lfm2vl_chat(model, "[{", NULL, 0, NULL, NULL, NULL, &result),
           LFM2VL_ERROR_ARGUMENT);
    expect("message without content",
           lfm2vl_chat(model, "[{\"role\": \"user\"}]", NULL, 0, NULL, NULL, NULL, &result),
           LFM2VL_ERROR_ARGUMENT);
    static const char *one_image =
        "[{\"role\": \"user\", \"content\": [{\"type\": \"image\"}]}]";
    expect("image part without an image",
           lfm2vl_chat(model, one_image, NULL, 0, NULL, NULL, NULL, &result),
           LFM2VL_ERROR_ARGUMENT);
    expect("an image without a part",
           lfm2vl_chat(model, "[{\"role\": \"user\", \"content\": \"hi\"}]", &missing, 1, NULL,
                       NULL, NULL, &result),
           LFM2VL_ERROR_ARGUMENT);
    expect("fork out NULL", lfm2vl_model_fork(model, NULL), LFM2VL_ERROR_ARGUMENT);
    lfm2vl_result_free(NULL);
    lfm2vl_result_free(&result);
    lfm2vl_model_free(NULL);

    /* Still usable: an RGBA pixel buffer with a stride, constrained. */
    unsigned char rgba[2 * 3 * 4 + 8];
    for (size_t i = 0; i < sizeof rgba; i++) rgba[i] = (unsigned char)(i * 37);
    lfm2vl_image img = {NULL, rgba, 3, 2, 16, 4};
    gp.json_schema = "{\"enum\": [\"yes\", \"no\"]}";
    lfm2vl_status st = lfm2vl_generate(model, "Yes?", &img, 1, &gp, NULL, NULL, &result);
    printf("after errors: %d %s\n", (int)st, st == LFM2VL_OK ? result.text : lfm2vl_last_error());
    if (st != LFM2VL_OK || (strcmp(result.text, "\"yes\"") != 0 && strcmp(result.text, "\"no\"") != 0)) {
        failures++;
    }
    lfm2vl_result_free(&result);
    lfm2vl_model_free(model);
    printf("%d failures\n", failures);
    return failures == 0 ? 0 : 1;
}
