// OpenBLAS's cblas.h also declares openblas_set_num_threads / openblas_get_num_threads,
// which BamTensors.BLASThreads uses to decide per region who owns the cores.
#include <cblas.h>
