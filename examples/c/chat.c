/* lfm2vl from C: two conversations at once on one loaded model. The model
 * is forked (same weights, a conversation each) and two threads each hold
 * a two-turn chat about an image with lfm2vl_chat; the second turn reuses
 * the first from the cache. Prints each turn's generated ids and the
 * number of reused prompt tokens.
 *
 *   cc -std=c11 -pthread -I crates/capi/include examples/c/chat.c \
 *      -L target/release -llfm2vl -o chat
 *   LD_LIBRARY_PATH=target/release ./chat MODEL IMAGE.png
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lfm2vl.h"

typedef struct {
    lfm2vl_model *model;
    const char *image;
    char name;
    /* What the thread prints once it is done (threads must not interleave). */
    char log[4096];
    int failed;
} conversation;

static void append(conversation *c, const char *text) {
    strncat(c->log, text, sizeof c->log - strlen(c->log) - 1);
}

static void append_ids(conversation *c, int turn, const lfm2vl_result *r) {
    char line[64];
    snprintf(line, sizeof line, "%c%d ids:", c->name, turn);
    append(c, line);
    for (size_t i = 0; i < r->n_ids; i++) {
        snprintf(line, sizeof line, " %u", (unsigned)r->ids[i]);
        append(c, line);
    }
    snprintf(line, sizeof line, "\n%c%d reused: %zu\n", c->name, turn, r->reused_tokens);
    append(c, line);
}

/* Writes a JSON string (quotes included) of `s` into `out`. */
static void json_string(char *out, size_t size, const char *s) {
    size_t n = 0;
    out[n++] = '"';
    for (; *s && n + 8 < size; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[n++] = '\\';
            out[n++] = (char)ch;
        } else if (ch < 0x20) {
            n += (size_t)snprintf(out + n, size - n, "\\u%04x", ch);
        } else {
            out[n++] = (char)ch;
        }
    }
    out[n++] = '"';
    out[n] = '\0';
}

static void *talk(void *arg) {
    conversation *c = arg;
    lfm2vl_image image = {0};
    image.path = c->image;
    lfm2vl_generate_params gp = lfm2vl_generate_default_params(); /* greedy */
    gp.max_new_tokens = 6;
    static const char *first =
        "[{\"role\": \"user\", \"content\": [{\"type\": \"image\"},"
        " {\"type\": \"text\", \"text\": \"What is in this image?\"}]}]";
    lfm2vl_result r1 = {0};
    if (lfm2vl_chat(c->model, first, &image, 1, &gp, NULL, NULL, &r1) != LFM2VL_OK) {
        append(c, lfm2vl_last_error());
        c->failed = 1;
        return NULL;
    }
    append_ids(c, 1, &r1);
    /* The history: the first turn, the reply, and a question. */
    char reply[2048];
    json_string(reply, sizeof reply, r1.text);
    char second[4096];
    snprintf(second, sizeof second,
             "[{\"role\": \"user\", \"content\": [{\"type\": \"image\"},"
             " {\"type\": \"text\", \"text\": \"What is in this image?\"}]},"
             " {\"role\": \"assistant\", \"content\": %s},"
             " {\"role\": \"user\", \"content\": \"And the colours?\"}]",
             reply);
    lfm2vl_result_free(&r1);
    lfm2vl_result r2 = {0};
    if (lfm2vl_chat(c->model, second, &image, 1, &gp, NULL, NULL, &r2) != LFM2VL_OK) {
        append(c, lfm2vl_last_error());
        c->failed = 1;
        return NULL;
    }
    append_ids(c, 2, &r2);
    lfm2vl_result_free(&r2);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL IMAGE\n", argv[0]);
        return 2;
    }
    lfm2vl_model_params mp = lfm2vl_model_default_params();
    mp.backend = "cpu";
    mp.max_len = 1024;
    mp.threads = 1;
    lfm2vl_model *a = NULL, *b = NULL;
    if (lfm2vl_model_load(argv[1], &mp, &a) != LFM2VL_OK ||
        lfm2vl_model_fork(a, &b) != LFM2VL_OK) {
        fprintf(stderr, "load: %s\n", lfm2vl_last_error());
        lfm2vl_model_free(a);
        return 1;
    }
    conversation ca = {a, argv[2], 'A', "", 0};
    conversation cb = {b, argv[2], 'B', "", 0};
    pthread_t ta, tb;
    if (pthread_create(&ta, NULL, talk, &ca) != 0 || pthread_create(&tb, NULL, talk, &cb) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        return 1;
    }
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    /* The fork outlives nothing: free in any order. */
    lfm2vl_model_free(a);
    fputs(ca.log, stdout);
    fputs(cb.log, stdout);
    lfm2vl_model_free(b);
    return ca.failed || cb.failed;
}
