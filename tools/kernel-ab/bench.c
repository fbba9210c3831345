// Two builds of one kernel family's decode kernels (tools/kernel-ab/run, which compiles them from
// two git revisions as variants vA and vB) streaming one activation row against a 256 MiB weight
// matrix, the rows split between two threads as decode splits them, the variants alternating
// 30 times in this one process so that the machine's drifting memory bandwidth hits both alike.
// Prints each variant's median and 90th-percentile GB/s of stored weight bytes.
//   ab COLS f32|f16|bf16|q8_0
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
typedef void (*mm_fn)(float *, size_t, const void *, size_t, const void *, size_t, int, int, int);
#define DECL(p) void p##_f32(float*,size_t,const void*,size_t,const void*,size_t,int,int,int); \
 void p##_bf16(float*,size_t,const void*,size_t,const void*,size_t,int,int,int); \
 void p##_matmul_f16(float*,size_t,const void*,size_t,const void*,size_t,int,int,int); \
 void p##_q8(float*,size_t,const void*,size_t,const void*,size_t,int,int,int);
DECL(vA) DECL(vB)
struct job { mm_fn f; float *y; const uint8_t *w; size_t stride; const void *x; int rows, cols; };
static void *run(void *a) { struct job *j = a; j->f(j->y, 0, j->w, j->stride, j->x, 0, 1, j->rows, j->cols); return 0; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(double*)a, y = *(double*)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
  int cols = argc > 1 ? atoi(argv[1]) : 512; const char *kind = argc > 2 ? argv[2] : "bf16";
  size_t bytes_row = !strcmp(kind, "f32") ? cols * 4 : (!strcmp(kind, "bf16") || !strcmp(kind, "f16")) ? cols * 2 : cols / 32 * 34;
  size_t total = 256u << 20; int rows = total / bytes_row;
  uint8_t *w = aligned_alloc(64, (size_t)rows * bytes_row); for (size_t i = 0; i < (size_t)rows * bytes_row; i++) w[i] = (uint8_t)(i * 7 + 3) & 0x3f;
  float *x = aligned_alloc(64, cols * 4 + 64); for (int i = 0; i < cols; i++) x[i] = 0.001f * (i % 13);
  uint8_t *xq = aligned_alloc(64, cols * 2); for (int i = 0; i < cols / 32 * 34; i++) xq[i] = (uint8_t)(i & 0x1f);
  float *y = aligned_alloc(64, rows * 4);
  mm_fn fs[2] = { !strcmp(kind,"f32") ? vA_f32 : !strcmp(kind,"f16") ? vA_matmul_f16 : !strcmp(kind,"bf16") ? vA_bf16 : vA_q8,
                  !strcmp(kind,"f32") ? vB_f32 : !strcmp(kind,"f16") ? vB_matmul_f16 : !strcmp(kind,"bf16") ? vB_bf16 : vB_q8 };
  const void *xin = !strcmp(kind, "q8_0") ? (const void*)xq : (const void*)x;
  int reps = 30; double t[2][64];
  for (int r = 0; r < reps; r++) for (int v = 0; v < 2; v++) {
    pthread_t th[2]; struct job j[2]; int half = rows / 2;
    for (int k = 0; k < 2; k++) { j[k] = (struct job){ fs[v], y + k * half, w + (size_t)k * half * bytes_row, bytes_row, xin, k ? rows - half : half, cols }; }
    double s = now(); for (int k = 0; k < 2; k++) pthread_create(&th[k], 0, run, &j[k]); for (int k = 0; k < 2; k++) pthread_join(th[k], 0);
    t[v][r] = (double)rows * bytes_row / (now() - s) / 1e9; }
  for (int v = 0; v < 2; v++) { qsort(t[v], reps, sizeof(double), cmp); printf("%s cols %d variant %c: median %.1f GB/s  p90 %.1f\n", kind, cols, 'A' + v, t[v][reps/2], t[v][reps*9/10]); }
}
