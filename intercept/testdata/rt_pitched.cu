/* A CUDA-runtime program with pitched memory: cudaMallocPitch, 2D copies
 * each way (and with cudaMemcpyDefault), 2D memsets, their async forms on
 * a stream, cudaMalloc3D and 3D copies with cudaPitchedPtr, and a copy
 * that overruns its allocation. argv[1]: the slice's memory in bytes. */
#include "rt_common.h"
#include <string.h>

enum { W = 100, H = 37, D = 5 };

int main(int argc, char **argv) {
	if (argc < 2)
		FAIL("usage: rt_pitched BYTES");
	CHECK(cudaSetDevice(0));

	/* 2D: host rows of W floats to a pitched allocation and back into
	 * host rows with another pitch. */
	float *host = (float *)malloc(sizeof(float) * W * H);
	for (int i = 0; i < W * H; i++)
		host[i] = (float)i;
	float *dev = NULL;
	size_t pitch = 0;
	CHECK(cudaMallocPitch((void **)&dev, &pitch, W * sizeof(float), H));
	if (pitch < W * sizeof(float) || pitch % 4 != 0)
		FAIL("pitch %zu for rows of %zu bytes", pitch, W * sizeof(float));
	CHECK(cudaMemcpy2D(dev, pitch, host, W * sizeof(float), W * sizeof(float), H, cudaMemcpyHostToDevice));
	/* Columns 10..19 of rows 3..7 become 0x7f bytes. */
	CHECK(cudaMemset2D((char *)dev + 3 * pitch + 10 * sizeof(float), pitch, 0x7f, 10 * sizeof(float), 5));
	const size_t backPitch = 128 * sizeof(float);
	float *back = (float *)calloc(128 * H, sizeof(float));
	CHECK(cudaMemcpy2D(back, backPitch, dev, pitch, W * sizeof(float), H, cudaMemcpyDeviceToHost));
	float marked;
	memset(&marked, 0x7f, sizeof marked);
	for (int y = 0; y < H; y++)
		for (int x = 0; x < 128; x++) {
			float want = x >= W ? 0 : (y >= 3 && y < 8 && x >= 10 && x < 20) ? marked : (float)(y * W + x);
			if (memcmp(&back[y * 128 + x], &want, sizeof want) != 0)
				FAIL("2D round trip: row %d column %d = %g, want %g", y, x, back[y * 128 + x], want);
		}

	/* Device to device, between two pitched allocations, a window of
	 * 8 x 4 elements at an offset; then async forms on a stream. */
	float *dev2 = NULL;
	size_t pitch2 = 0;
	CHECK(cudaMallocPitch((void **)&dev2, &pitch2, W * sizeof(float), H));
	CHECK(cudaMemset2D(dev2, pitch2, 0, W * sizeof(float), H));
	CHECK(cudaMemcpy2D((char *)dev2 + 2 * pitch2 + 4 * sizeof(float), pitch2, (char *)dev + 20 * pitch + 30 * sizeof(float), pitch,
		8 * sizeof(float), 4, cudaMemcpyDeviceToDevice));
	cudaStream_t s;
	CHECK(cudaStreamCreate(&s));
	float *pinned = NULL;
	CHECK(cudaMallocHost((void **)&pinned, sizeof(float) * W * H));
	CHECK(cudaMemset2DAsync((char *)dev2 + 10 * pitch2, pitch2, 0xff, 2 * sizeof(float), 2, s));
	CHECK(cudaMemcpy2DAsync(pinned, W * sizeof(float), dev2, pitch2, W * sizeof(float), H, cudaMemcpyDeviceToHost, s));
	CHECK(cudaStreamSynchronize(s));
	float ones;
	memset(&ones, 0xff, sizeof ones);
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++) {
			float want = 0;
			if (y >= 2 && y < 6 && x >= 4 && x < 12)
				want = (float)((y - 2 + 20) * W + (x - 4 + 30));
			if (y >= 10 && y < 12 && x < 2)
				want = ones;
			if (memcmp(&pinned[y * W + x], &want, sizeof want) != 0)
				FAIL("device-to-device window: row %d column %d = %g, want %g", y, x, pinned[y * W + x], want);
		}

	/* cudaMemcpyDefault works out each end. */
	memset(back, 0, sizeof(float) * 128 * H);
	CHECK(cudaMemcpy2D(dev2, pitch2, host, W * sizeof(float), W * sizeof(float), H, cudaMemcpyDefault));
	CHECK(cudaMemcpy2D(back, W * sizeof(float), dev2, pitch2, W * sizeof(float), H, cudaMemcpyDefault));
	if (memcmp(back, host, sizeof(float) * W * H) != 0)
		FAIL("2D copies with cudaMemcpyDefault changed the bytes");

	/* 3D: W x H x D floats, through cudaMalloc3D's pitched pointer. */
	cudaExtent extent = make_cudaExtent(W * sizeof(float), H, D);
	cudaPitchedPtr vol;
	CHECK(cudaMalloc3D(&vol, extent));
	if (vol.pitch < W * sizeof(float) || vol.xsize != W * sizeof(float) || vol.ysize != H)
		FAIL("cudaMalloc3D: pitch %zu, xsize %zu, ysize %zu", vol.pitch, vol.xsize, vol.ysize);
	float *cube = (float *)malloc(sizeof(float) * W * H * D), *cube2 = (float *)calloc(W * H * D, sizeof(float));
	for (int i = 0; i < W * H * D; i++)
		cube[i] = (float)(i * 3 + 1);
	cudaMemcpy3DParms up = {0};
	up.srcPtr = make_cudaPitchedPtr(cube, W * sizeof(float), W, H);
	up.dstPtr = vol;
	up.extent = extent;
	up.kind = cudaMemcpyHostToDevice;
	CHECK(cudaMemcpy3D(&up));
	cudaMemcpy3DParms down = {0};
	down.srcPtr = vol;
	down.dstPtr = make_cudaPitchedPtr(cube2, W * sizeof(float), W, H);
	down.extent = extent;
	down.kind = cudaMemcpyDeviceToHost;
	CHECK(cudaMemcpy3DAsync(&down, s));
	CHECK(cudaStreamSynchronize(s));
	if (memcmp(cube, cube2, sizeof(float) * W * H * D) != 0)
		FAIL("3D round trip changed the bytes");

	/* A row that runs past the allocation's end is refused (the next row
	 * could be another allocation of the program's, which is allowed). */
	if (cudaMemcpy2D((char *)dev + (H - 1) * pitch, pitch + 4, host, pitch + 4, pitch + 4, 1, cudaMemcpyHostToDevice) ==
		cudaSuccess)
		FAIL("a 2D copy past the allocation's end succeeded");
	cudaGetLastError();

	CHECK(cudaStreamDestroy(s));
	CHECK(cudaFree(dev));
	CHECK(cudaFree(dev2));
	CHECK(cudaFree(vol.ptr));
	CHECK(cudaFreeHost(pinned));
	printf("pitched ok: pitch %zu\n", pitch);
	return 0;
}
