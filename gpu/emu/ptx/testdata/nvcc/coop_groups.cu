#include <cooperative_groups.h>
#include <cooperative_groups/reduce.h>
namespace cg = cooperative_groups;
extern "C" __global__ void cg_reduce(const int *in, int *out, int n) {
  cg::thread_block block = cg::this_thread_block();
  cg::thread_block_tile<32> tile = cg::tiled_partition<32>(block);
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  int v = i < n ? in[i] : 0;
  int s = cg::reduce(tile, v, cg::plus<int>());
  if (tile.thread_rank() == 0) atomicAdd(out, s);
  block.sync();
}
extern "C" __global__ void cg_tiles(const int *in, int *out) {
  auto block = cg::this_thread_block();
  auto t4 = cg::tiled_partition<4>(block);
  int v = in[block.thread_rank()];
  for (int o = 2; o > 0; o >>= 1) v += t4.shfl_down(v, o);
  out[block.thread_rank()] = t4.thread_rank() == 0 ? v : t4.meta_group_rank();
}
