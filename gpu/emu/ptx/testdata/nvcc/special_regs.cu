extern "C" __global__ void specials(unsigned *out) {
  unsigned smid, nsmid, warpid, lanemask, dyn, total;
  asm volatile("mov.u32 %0, %%smid;" : "=r"(smid));
  asm volatile("mov.u32 %0, %%nsmid;" : "=r"(nsmid));
  asm volatile("mov.u32 %0, %%warpid;" : "=r"(warpid));
  asm volatile("mov.u32 %0, %%lanemask_lt;" : "=r"(lanemask));
  asm volatile("mov.u32 %0, %%dynamic_smem_size;" : "=r"(dyn));
  asm volatile("mov.u32 %0, %%total_smem_size;" : "=r"(total));
  unsigned long long gt;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(gt));
  int t = threadIdx.x;
  out[t * 4 + 0] = smid < nsmid; out[t * 4 + 1] = warpid; out[t * 4 + 2] = lanemask; out[t * 4 + 3] = dyn + total + (gt != 0);
}
