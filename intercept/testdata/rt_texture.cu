/* A CUDA-runtime program with CUDA arrays, textures and surfaces: an
 * RGBA8 image in a cudaArray scaled with bilinear filtering through a
 * texture object (normalised coordinates, clamped), a surface object
 * inverting another array in place, a layered float array, a 3D array
 * filled by cudaMemcpy3D, tex1Dfetch over linear memory, and the
 * descriptors read back. Each result is checked against the filtering
 * formula of the CUDA programming guide, computed on the host.
 * argv[1]: the slice's memory in bytes. */
#include "rt_common.h"
#include <stdint.h>
#include <string.h>

enum { SW = 13, SH = 9, DW = 31, DH = 20, LW = 5, LH = 4, LN = 3, VW = 4, VH = 3, VD = 2, N = 16 };

__global__ void scale(cudaTextureObject_t t, float4 *out, int w, int h) {
	int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
	if (x < w && y < h)
		out[y * w + x] = tex2D<float4>(t, (x + 0.5f) / w, (y + 0.5f) / h);
}

__global__ void invert(cudaSurfaceObject_t s, int w, int h) {
	int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
	if (x < w && y < h) {
		uchar4 v = surf2Dread<uchar4>(s, x * 4, y);
		surf2Dwrite(make_uchar4(255 - v.x, 255 - v.y, 255 - v.z, v.w), s, x * 4, y);
	}
}

__global__ void layered(cudaTextureObject_t t, float *out) {
	int x = threadIdx.x, y = threadIdx.y, l = blockIdx.x;
	out[(l * LH + y) * LW + x] = tex2DLayered<float>(t, x + 0.5f, y + 0.5f, l);
}

__global__ void volume(cudaTextureObject_t t, float *out) {
	int x = threadIdx.x, y = threadIdx.y, z = threadIdx.z;
	out[(z * VH + y) * VW + x] = tex3D<float>(t, x + 0.5f, y + 0.5f, z + 0.5f);
}

__global__ void fetch(cudaTextureObject_t t, int *out) {
	int i = threadIdx.x;
	out[i] = tex1Dfetch<int>(t, i - 2);
}

static unsigned char src[SH][SW][4];

/* texel reads channel c of texel (x, y), clamped, as a normalised float. */
static float texel(int x, int y, int c) {
	x = x < 0 ? 0 : x >= SW ? SW - 1 : x;
	y = y < 0 ? 0 : y >= SH ? SH - 1 : y;
	return src[y][x][c] / 255.0f;
}

/* ifloor is floor(v) (no libm: the tests link none). */
static int ifloor(float v) {
	int i = (int)v;
	return v < (float)i ? i - 1 : i;
}

/* weight is frac(v) in 9-bit fixed point with 8 fractional bits, rounded
 * to nearest. */
static float weight(float v, int i) { return (float)(int)((v - (float)i) * 256.0f + 0.5f) / 256.0f; }

int main(int argc, char **argv) {
	if (argc < 2)
		FAIL("usage: rt_texture BYTES");
	CHECK(cudaSetDevice(0));
	for (int y = 0; y < SH; y++)
		for (int x = 0; x < SW; x++)
			for (int c = 0; c < 4; c++)
				src[y][x][c] = (unsigned char)(x * 37 + y * 11 + c * 71);

	/* Bilinear scaling of an RGBA8 image. */
	cudaChannelFormatDesc rgba = cudaCreateChannelDesc<uchar4>();
	cudaArray_t img;
	CHECK(cudaMallocArray(&img, &rgba, SW, SH, cudaArraySurfaceLoadStore)); /* a surface writes it too */
	CHECK(cudaMemcpy2DToArray(img, 0, 0, src, SW * 4, SW * 4, SH, cudaMemcpyHostToDevice));
	cudaResourceDesc res;
	memset(&res, 0, sizeof res);
	res.resType = cudaResourceTypeArray;
	res.res.array.array = img;
	cudaTextureDesc td;
	memset(&td, 0, sizeof td);
	td.addressMode[0] = td.addressMode[1] = cudaAddressModeClamp;
	td.filterMode = cudaFilterModeLinear;
	td.readMode = cudaReadModeNormalizedFloat;
	td.normalizedCoords = 1;
	cudaTextureObject_t tex;
	CHECK(cudaCreateTextureObject(&tex, &res, &td, NULL));
	float4 *dout;
	CHECK(cudaMalloc(&dout, sizeof(float4) * DW * DH));
	scale<<<dim3(2, 2), dim3(16, 16)>>>(tex, dout, DW, DH);
	CHECK(cudaGetLastError());
	static float4 out[DH][DW];
	CHECK(cudaMemcpy(out, dout, sizeof out, cudaMemcpyDeviceToHost));
	for (int y = 0; y < DH; y++)
		for (int x = 0; x < DW; x++) {
			float u = (x + 0.5f) / DW * SW - 0.5f, v = (y + 0.5f) / DH * SH - 0.5f;
			int i = ifloor(u), j = ifloor(v);
			float a = weight(u, i), b = weight(v, j);
			const float *got = &out[y][x].x;
			for (int c = 0; c < 4; c++) {
				float want = (1 - a) * (1 - b) * texel(i, j, c) + a * (1 - b) * texel(i + 1, j, c) +
					(1 - a) * b * texel(i, j + 1, c) + a * b * texel(i + 1, j + 1, c);
				if (got[c] - want > 1e-6f || want - got[c] > 1e-6f)
					FAIL("scaled (%d, %d) channel %d = %.9g, want %.9g", x, y, c, got[c], want);
			}
		}
	cudaResourceDesc back;
	CHECK(cudaGetTextureObjectResourceDesc(&back, tex));
	EXPECT(back.resType == cudaResourceTypeArray && back.res.array.array == img);
	cudaChannelFormatDesc fd;
	cudaExtent ext;
	unsigned int flags;
	CHECK(cudaArrayGetInfo(&fd, &ext, &flags, img));
	EXPECT(fd.x == 8 && fd.y == 8 && fd.z == 8 && fd.w == 8 && ext.width == SW && ext.height == SH);
	CHECK(cudaDestroyTextureObject(tex));

	/* A surface inverts the colours of the array in place. */
	cudaSurfaceObject_t surf;
	CHECK(cudaCreateSurfaceObject(&surf, &res));
	invert<<<1, dim3(16, 16)>>>(surf, SW, SH);
	CHECK(cudaGetLastError());
	static unsigned char inv[SH][SW][4];
	CHECK(cudaMemcpy2DFromArray(inv, SW * 4, img, 0, 0, SW * 4, SH, cudaMemcpyDeviceToHost));
	for (int y = 0; y < SH; y++)
		for (int x = 0; x < SW; x++)
			for (int c = 0; c < 4; c++) {
				int want = c == 3 ? src[y][x][c] : 255 - src[y][x][c];
				if (inv[y][x][c] != want)
					FAIL("inverted (%d, %d) channel %d = %d, want %d", x, y, c, inv[y][x][c], want);
			}
	CHECK(cudaDestroySurfaceObject(surf));
	CHECK(cudaFreeArray(img));

	/* A layered 2D array of floats, read at texel centres. */
	cudaChannelFormatDesc f1 = cudaCreateChannelDesc<float>();
	cudaArray_t lay;
	CHECK(cudaMalloc3DArray(&lay, &f1, make_cudaExtent(LW, LH, LN), cudaArrayLayered));
	static float lv[LN][LH][LW];
	for (int i = 0; i < LN * LH * LW; i++)
		(&lv[0][0][0])[i] = i * 0.25f - 3;
	cudaMemcpy3DParms p;
	memset(&p, 0, sizeof p);
	p.srcPtr = make_cudaPitchedPtr(lv, LW * sizeof(float), LW, LH);
	p.dstArray = lay;
	p.extent = make_cudaExtent(LW, LH, LN);
	p.kind = cudaMemcpyHostToDevice;
	CHECK(cudaMemcpy3D(&p));
	memset(&res, 0, sizeof res);
	res.resType = cudaResourceTypeArray;
	res.res.array.array = lay;
	memset(&td, 0, sizeof td);
	td.filterMode = cudaFilterModePoint;
	td.readMode = cudaReadModeElementType;
	CHECK(cudaCreateTextureObject(&tex, &res, &td, NULL));
	float *dl;
	CHECK(cudaMalloc(&dl, sizeof lv));
	layered<<<LN, dim3(LW, LH)>>>(tex, dl);
	static float lout[LN][LH][LW];
	CHECK(cudaMemcpy(lout, dl, sizeof lout, cudaMemcpyDeviceToHost));
	if (memcmp(lout, lv, sizeof lv) != 0)
		FAIL("layered texture reads differ");
	CHECK(cudaDestroyTextureObject(tex));
	CHECK(cudaFreeArray(lay));

	/* A 3D array, filled and read back by cudaMemcpy3D, then sampled. */
	cudaArray_t vol;
	CHECK(cudaMalloc3DArray(&vol, &f1, make_cudaExtent(VW, VH, VD)));
	static float vv[VD][VH][VW], vback[VD][VH][VW];
	for (int i = 0; i < VD * VH * VW; i++)
		(&vv[0][0][0])[i] = (float)(i * i) - 7.5f;
	memset(&p, 0, sizeof p);
	p.srcPtr = make_cudaPitchedPtr(vv, VW * sizeof(float), VW, VH);
	p.dstArray = vol;
	p.extent = make_cudaExtent(VW, VH, VD);
	p.kind = cudaMemcpyHostToDevice;
	CHECK(cudaMemcpy3D(&p));
	memset(&p, 0, sizeof p);
	p.srcArray = vol;
	p.dstPtr = make_cudaPitchedPtr(vback, VW * sizeof(float), VW, VH);
	p.extent = make_cudaExtent(VW, VH, VD);
	p.kind = cudaMemcpyDeviceToHost;
	CHECK(cudaMemcpy3D(&p));
	if (memcmp(vback, vv, sizeof vv) != 0)
		FAIL("3D array round trip differs");
	res.res.array.array = vol;
	CHECK(cudaCreateTextureObject(&tex, &res, &td, NULL));
	float *dv;
	CHECK(cudaMalloc(&dv, sizeof vv));
	volume<<<1, dim3(VW, VH, VD)>>>(tex, dv);
	CHECK(cudaMemcpy(vback, dv, sizeof vback, cudaMemcpyDeviceToHost));
	if (memcmp(vback, vv, sizeof vv) != 0)
		FAIL("3D texture reads differ");
	CHECK(cudaDestroyTextureObject(tex));
	CHECK(cudaFreeArray(vol));

	/* tex1Dfetch over linear memory reads zero outside it. */
	int lin[N], fout[N + 4];
	for (int i = 0; i < N; i++)
		lin[i] = i * 1000 - 3;
	int *dlin, *dfout;
	CHECK(cudaMalloc(&dlin, sizeof lin));
	CHECK(cudaMalloc(&dfout, sizeof fout));
	CHECK(cudaMemcpy(dlin, lin, sizeof lin, cudaMemcpyHostToDevice));
	memset(&res, 0, sizeof res);
	res.resType = cudaResourceTypeLinear;
	res.res.linear.devPtr = dlin;
	res.res.linear.desc = cudaCreateChannelDesc<int>();
	res.res.linear.sizeInBytes = sizeof lin;
	CHECK(cudaCreateTextureObject(&tex, &res, &td, NULL));
	fetch<<<1, N + 4>>>(tex, dfout);
	CHECK(cudaMemcpy(fout, dfout, sizeof fout, cudaMemcpyDeviceToHost));
	for (int i = 0; i < N + 4; i++) {
		int want = i - 2 >= 0 && i - 2 < N ? lin[i - 2] : 0;
		if (fout[i] != want)
			FAIL("tex1Dfetch(%d) = %d, want %d", i - 2, fout[i], want);
	}
	CHECK(cudaDestroyTextureObject(tex));
	/* A texture over memory the program does not own, or past the end of
	 * its allocation, is refused. */
	res.res.linear.devPtr = (void *)(uintptr_t)0x10000;
	EXPECT(cudaCreateTextureObject(&tex, &res, &td, NULL) != cudaSuccess);
	cudaGetLastError();
	res.res.linear.devPtr = (char *)dlin + 8;
	EXPECT(cudaCreateTextureObject(&tex, &res, &td, NULL) != cudaSuccess);
	cudaGetLastError();
	CHECK(cudaDeviceSynchronize());
	printf("rt_texture: ok\n");
	return 0;
}
