// A cooperative kernel: each round every thread adds its value into a
// per-round total, the grid synchronises, and every thread then reads
// the whole grid's total.
#include <cooperative_groups.h>
namespace cg = cooperative_groups;

extern "C" __global__ void grid_rounds(const int *in, int *totals, int *out, int n, int rounds) {
  cg::grid_group g = cg::this_grid();
  int i = g.thread_rank();
  int v = i < n ? in[i] : 0;
  for (int r = 0; r < rounds; r++) {
    atomicAdd(&totals[r], v);
    g.sync();
    v = totals[r] - v;
    g.sync();
  }
  if (i < n) out[i] = v;
}
