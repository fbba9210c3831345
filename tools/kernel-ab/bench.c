// Two builds of one kernel family's decode kernels (tools/kernel-ab/run, which compiles them from
// two git revisions as variants vA and vB) streaming one activation row against a 256 MiB weight
// matrix, the rows split between two threads as decode splits them, the variants alternating
// 30 times in this one process so that the machine's drifting memory bandwidth hits both alike.
// Prints each variant's median and 90th-percentile GB/s of stored weight bytes.
//   ab COLS f32|f16|bf16|q8_0
// With kind pv_f32|pv_f16 it measures the KV-cache kernel of a decode step instead, P V (the
// weighted sum of the value rows): the 256 MiB are heads of COLS positions x 64 values, each head
// one call, the heads split between the two threads.
//   ab POSITIONS pv_f32|pv_f16
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
typedef void (*wr_fn)(float *, const void *, size_t, const float *, int, int, int);
void vA_f32_weighted_rows(float*,const void*,size_t,const float*,int,int,int); void vA_f16_weighted_rows(float*,const void*,size_t,const float*,int,int,int);
void vB_f32_weighted_rows(float*,const void*,size_t,const float*,int,int,int); void vB_f16_weighted_rows(float*,const void*,size_t,const float*,int,int,int);
struct pv_job { wr_fn f; float *y; const uint8_t *w; size_t head_bytes, row_bytes; const float *p; int heads, positions; };
static void *run_pv(void *a) {
  struct pv_job *j = a;
  for (int h = 0; h < j->heads; h++) j->f(j->y + 64 * h, j->w + (size_t)h * j->head_bytes, j->row_bytes, j->p, j->positions, 64, 0);
  return 0;
}
struct job { mm_fn f; float *y; const uint8_t *w; size_t stride; const void *x; int rows, cols; };
static void *run(void *a) { struct job *j = a; j->f(j->y, 0, j->w, j->stride, j->x, 0, 1, j->rows, j->cols); return 0; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(double*)a, y = *(double*)b; return x < y ? -1 : x > y; }
// Runs variants A and B alternately 30 times, each run being `thread` on the two jobs of that
// variant (jobs[2 * v] and jobs[2 * v + 1], `size` bytes each) at once, and prints each variant's
// median and 90th-percentile GB/s for the `bytes` the two jobs read, after `label`.
static void alternate(void *(*thread)(void *), void *jobs, size_t size, double bytes, const char *label) {
  enum { reps = 30 }; double t[2][reps];
  for (int r = 0; r < reps; r++) for (int v = 0; v < 2; v++) {
    pthread_t th[2];
    double s = now(); for (int k = 0; k < 2; k++) pthread_create(&th[k], 0, thread, (char *)jobs + (2 * v + k) * size);
    for (int k = 0; k < 2; k++) pthread_join(th[k], 0);
    t[v][r] = bytes / (now() - s) / 1e9; }
  for (int v = 0; v < 2; v++) { qsort(t[v], reps, sizeof(double), cmp); printf("%s variant %c: median %.1f GB/s  p90 %.1f\n", label, 'A' + v, t[v][reps/2], t[v][reps*9/10]); }
}
static int pv(int positions, const char *kind) {
  size_t elem = !strcmp(kind, "pv_f32") ? 4 : 2, row_bytes = 64 * elem, head_bytes = (size_t)positions * row_bytes;
  int heads = (int)((256u << 20) / head_bytes); heads -= heads % 2;
  uint8_t *w = aligned_alloc(64, (size_t)heads * head_bytes); for (size_t i = 0; i < (size_t)heads * head_bytes; i++) w[i] = (uint8_t)(i * 7 + 3) & 0x3f;
  float *p = aligned_alloc(64, positions * 4 + 64); for (int i = 0; i < positions; i++) p[i] = 1.0f / positions;
  float *y = aligned_alloc(64, (size_t)heads * 64 * 4);
  wr_fn fs[2] = { elem == 4 ? vA_f32_weighted_rows : vA_f16_weighted_rows, elem == 4 ? vB_f32_weighted_rows : vB_f16_weighted_rows };
  struct pv_job jobs[4]; int half = heads / 2;
  for (int v = 0; v < 2; v++) for (int k = 0; k < 2; k++)
    jobs[2 * v + k] = (struct pv_job){ fs[v], y + (size_t)k * half * 64, w + (size_t)k * half * head_bytes, head_bytes, row_bytes, p, half, positions };
  char label[64]; snprintf(label, sizeof label, "%s positions %d", kind, positions);
  alternate(run_pv, jobs, sizeof(struct pv_job), (double)heads * head_bytes, label);
  return 0;
}
int main(int argc, char **argv) {
  int cols = argc > 1 ? atoi(argv[1]) : 512; const char *kind = argc > 2 ? argv[2] : "bf16";
  if (!strncmp(kind, "pv_", 3)) return pv(cols, kind);
  size_t bytes_row = !strcmp(kind, "f32") ? cols * 4 : (!strcmp(kind, "bf16") || !strcmp(kind, "f16")) ? cols * 2 : cols / 32 * 34;
  size_t total = 256u << 20; int rows = total / bytes_row;
  uint8_t *w = aligned_alloc(64, (size_t)rows * bytes_row); for (size_t i = 0; i < (size_t)rows * bytes_row; i++) w[i] = (uint8_t)(i * 7 + 3) & 0x3f;
  float *x = aligned_alloc(64, cols * 4 + 64); for (int i = 0; i < cols; i++) x[i] = 0.001f * (i % 13);
  uint8_t *xq = aligned_alloc(64, cols * 2); for (int i = 0; i < cols / 32 * 34; i++) xq[i] = (uint8_t)(i & 0x1f);
  float *y = aligned_alloc(64, rows * 4);
  mm_fn fs[2] = { !strcmp(kind,"f32") ? vA_f32 : !strcmp(kind,"f16") ? vA_matmul_f16 : !strcmp(kind,"bf16") ? vA_bf16 : vA_q8,
                  !strcmp(kind,"f32") ? vB_f32 : !strcmp(kind,"f16") ? vB_matmul_f16 : !strcmp(kind,"bf16") ? vB_bf16 : vB_q8 };
  const void *xin = !strcmp(kind, "q8_0") ? (const void*)xq : (const void*)x;
  struct job jobs[4]; int half = rows / 2;
  for (int v = 0; v < 2; v++) for (int k = 0; k < 2; k++)
    jobs[2 * v + k] = (struct job){ fs[v], y + k * half, w + (size_t)k * half * bytes_row, bytes_row, xin, k ? rows - half : half, cols };
  char label[64]; snprintf(label, sizeof label, "%s cols %d", kind, cols);
  alternate(run, jobs, sizeof(struct job), (double)rows * bytes_row, label);
}
