// Streaming read bandwidth with N threads (the decode roofline's denominator):
// each thread sums its part of a 256 MiB float buffer (far past the last-level
// cache) with independent vector accumulators; prints the best of 5 passes in
// GB/s. The lm suite measures the same in Swift (DecodeRoofline.swift); this
// probe needs no build of the package.
//
//   cc -O2 -march=native -pthread Tools/read_bandwidth.c -o /tmp/read_bandwidth && /tmp/read_bandwidth 2
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define FLOATS (64L << 20)

typedef float v16 __attribute__((vector_size(64)));

struct part {
    const float *begin;
    long count;
    float sum;
};

static void *reader(void *arg) {
    struct part *p = arg;
    v16 a = {0}, b = {0}, c = {0}, d = {0};
    for (long i = 0; i + 64 <= p->count; i += 64) {
        a += *(const v16 *)(p->begin + i);
        b += *(const v16 *)(p->begin + i + 16);
        c += *(const v16 *)(p->begin + i + 32);
        d += *(const v16 *)(p->begin + i + 48);
    }
    v16 s = a + b + c + d;
    float t = 0;
    for (int i = 0; i < 16; i++) t += s[i];
    p->sum = t;
    return NULL;
}

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (threads < 1 || threads > 64) {
        fprintf(stderr, "threads must be 1...64\n");
        return 2;
    }
    float *buffer = aligned_alloc(64, FLOATS * sizeof(float));
    if (!buffer) {
        fprintf(stderr, "cannot allocate 256 MiB\n");
        return 1;
    }
    for (long i = 0; i < FLOATS; i++) buffer[i] = 1.0f;
    double best = 0;
    float check = 0;
    for (int rep = 0; rep < 5; rep++) {
        pthread_t tid[64];
        struct part parts[64];
        long per = FLOATS / threads / 64 * 64;
        double t0 = seconds();
        for (int t = 0; t < threads; t++) {
            parts[t] = (struct part){buffer + t * per, per, 0};
            pthread_create(&tid[t], NULL, reader, &parts[t]);
        }
        for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
        double s = seconds() - t0;
        double rate = (double)per * threads * sizeof(float) / s;
        if (rate > best) best = rate;
        for (int t = 0; t < threads; t++) check += parts[t].sum;
    }
    printf("read bandwidth, %d threads: %.1f GB/s (best of 5; checksum %.0f)\n", threads, best * 1e-9, check);
    free(buffer);
    return 0;
}
