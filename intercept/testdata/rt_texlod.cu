/* A CUDA-runtime program with mipmapped arrays and cube maps: a float
 * mipmapped array whose levels, reached with cudaGetMipmappedArrayLevel,
 * are filled and read back, then sampled with tex2DLod at each level and
 * between levels; a cube map and a layered cube map sampled with
 * texCubemap and texCubemapLayered. The expected faces follow the CUDA
 * programming guide's table of cube map faces, computed on the host.
 * The slice's memory, argv[1], is not used. */
#include "rt_common.h"
#include <string.h>

enum { MW = 16, MH = 8, ML = 4, CW = 4, NLOOK = 8 };

__global__ void lod(cudaTextureObject_t t, const float4 *in, float *out, int n) {
	int i = threadIdx.x;
	if (i < n)
		out[i] = tex2DLod<float>(t, in[i].x, in[i].y, in[i].z);
}

__global__ void cube(cudaTextureObject_t t, const float4 *in, float *out, int layer) {
	int i = threadIdx.x;
	out[i] = layer < 0 ? texCubemap<float>(t, in[i].x, in[i].y, in[i].z)
	                   : texCubemapLayered<float>(t, in[i].x, in[i].y, in[i].z, layer);
}

static int lw(int l) { return MW >> l > 0 ? MW >> l : 1; }
static int lh(int l) { return MH >> l > 0 ? MH >> l : 1; }
static float mipTexel(int l, int x, int y) { return 1000.0f * l + y * lw(l) + x; }
static float cubeTexel(int layer, int face, int x, int y) { return 1000.0f * layer + 100.0f * face + y * CW + x; }

static float absf(float v) { return v < 0 ? -v : v; }

/* facePoint is the face a direction points to and the texel of a CW×CW
 * face it reads with point filtering, from the guide's table. */
static int facePoint(float x, float y, float z, int *tx, int *ty) {
	float ax = absf(x), ay = absf(y), az = absf(z), s, t, m;
	int face;
	if (ax >= ay && ax >= az) {
		m = ax, face = x >= 0 ? 0 : 1, s = x >= 0 ? -z : z, t = -y;
	} else if (ay >= az) {
		m = ay, face = y >= 0 ? 2 : 3, s = x, t = y >= 0 ? z : -z;
	} else {
		m = az, face = z >= 0 ? 4 : 5, s = z >= 0 ? x : -x, t = -y;
	}
	float u = (s / m + 1) / 2 * CW, v = (t / m + 1) / 2 * CW;
	*tx = u >= CW ? CW - 1 : (int)u;
	*ty = v >= CW ? CW - 1 : (int)v;
	return face;
}

static float4 *devLooks(const float4 *h, int n) {
	float4 *d;
	CHECK(cudaMalloc(&d, n * sizeof(float4)));
	CHECK(cudaMemcpy(d, h, n * sizeof(float4), cudaMemcpyHostToDevice));
	return d;
}

static void mipmapped(void) {
	cudaChannelFormatDesc f = cudaCreateChannelDesc<float>();
	cudaMipmappedArray_t mm;
	CHECK(cudaMallocMipmappedArray(&mm, &f, make_cudaExtent(MW, MH, 0), ML));
	static float host[MH][MW], back[MH][MW];
	for (int l = 0; l < ML; l++) {
		cudaArray_t a;
		CHECK(cudaGetMipmappedArrayLevel(&a, mm, l));
		cudaChannelFormatDesc af;
		cudaExtent ext;
		unsigned int flags;
		CHECK(cudaArrayGetInfo(&af, &ext, &flags, a));
		EXPECT((int)ext.width == lw(l) && (int)ext.height == lh(l) && ext.depth == 0 && af.x == 32);
		for (int y = 0; y < lh(l); y++)
			for (int x = 0; x < lw(l); x++)
				host[y][x] = mipTexel(l, x, y);
		CHECK(cudaMemcpy2DToArray(a, 0, 0, host, sizeof host[0], lw(l) * sizeof(float), lh(l), cudaMemcpyHostToDevice));
		memset(back, 0, sizeof back);
		CHECK(cudaMemcpy2DFromArray(back, sizeof back[0], a, 0, 0, lw(l) * sizeof(float), lh(l), cudaMemcpyDeviceToHost));
		for (int y = 0; y < lh(l); y++)
			EXPECT(memcmp(back[y], host[y], lw(l) * sizeof(float)) == 0);
	}
	cudaArray_t none;
	if (cudaGetMipmappedArrayLevel(&none, mm, ML) != cudaErrorInvalidValue)
		FAIL("level %d of %d levels was handed out", ML, ML);
	cudaGetLastError();

	cudaResourceDesc rd;
	memset(&rd, 0, sizeof rd);
	rd.resType = cudaResourceTypeMipmappedArray;
	rd.res.mipmap.mipmap = mm;
	cudaTextureDesc td;
	memset(&td, 0, sizeof td);
	td.addressMode[0] = td.addressMode[1] = cudaAddressModeClamp;
	td.filterMode = cudaFilterModePoint;
	td.mipmapFilterMode = cudaFilterModeLinear;
	td.normalizedCoords = 1;
	td.maxMipmapLevelClamp = ML - 1;
	cudaTextureObject_t t;
	CHECK(cudaCreateTextureObject(&t, &rd, &td, NULL));

	/* (u, v, lod) and the texel expected: each level at its texel
	 * centres, halfway between two levels, and past the last level */
	float4 looks[NLOOK];
	float want[NLOOK];
	int n = 0;
	for (int l = 0; l < ML; l++) {
		int x = lw(l) - 1, y = lh(l) / 2;
		looks[n] = make_float4((x + 0.5f) / lw(l), (y + 0.5f) / lh(l), (float)l, 0);
		want[n++] = mipTexel(l, x, y);
	}
	looks[n] = make_float4(0.3f, 0.6f, 0.5f, 0); /* texel (4, 4) of level 0, (2, 2) of level 1 */
	want[n++] = 0.5f * mipTexel(0, 4, 4) + 0.5f * mipTexel(1, 2, 2);
	looks[n] = make_float4(0.9f, 0.1f, 2.5f, 0); /* texel (3, 0) of level 2, (1, 0) of level 3 */
	want[n++] = 0.5f * mipTexel(2, 3, 0) + 0.5f * mipTexel(3, 1, 0);
	looks[n] = make_float4(0.9f, 0.9f, 9.0f, 0); /* clamped to the last level */
	want[n++] = mipTexel(ML - 1, 1, 0);
	float4 *in = devLooks(looks, n);
	float *out, got[NLOOK];
	CHECK(cudaMalloc(&out, n * sizeof(float)));
	lod<<<1, n>>>(t, in, out, n);
	CHECK(cudaGetLastError());
	CHECK(cudaMemcpy(got, out, n * sizeof(float), cudaMemcpyDeviceToHost));
	for (int i = 0; i < n; i++)
		if (got[i] != want[i])
			FAIL("tex2DLod(%g, %g, lod %g) = %g, want %g", looks[i].x, looks[i].y, looks[i].z, got[i], want[i]);
	CHECK(cudaDestroyTextureObject(t));
	CHECK(cudaFree(in));
	CHECK(cudaFree(out));
	CHECK(cudaFreeMipmappedArray(mm));
}

/* cubes fills a cube map of layers cubes (0: not layered) and reads it
 * in several directions of every face. */
static void cubes(int layers) {
	int faces = 6 * (layers ? layers : 1);
	cudaChannelFormatDesc f = cudaCreateChannelDesc<float>();
	cudaArray_t a;
	CHECK(cudaMalloc3DArray(&a, &f, make_cudaExtent(CW, CW, faces), cudaArrayCubemap | (layers ? cudaArrayLayered : 0)));
	static float host[12][CW][CW];
	for (int i = 0; i < faces; i++)
		for (int y = 0; y < CW; y++)
			for (int x = 0; x < CW; x++)
				host[i][y][x] = cubeTexel(i / 6, i % 6, x, y);
	cudaMemcpy3DParms p;
	memset(&p, 0, sizeof p);
	p.srcPtr = make_cudaPitchedPtr(host, CW * sizeof(float), CW, CW);
	p.dstArray = a;
	p.extent = make_cudaExtent(CW, CW, faces);
	p.kind = cudaMemcpyHostToDevice;
	CHECK(cudaMemcpy3D(&p));

	cudaResourceDesc rd;
	memset(&rd, 0, sizeof rd);
	rd.resType = cudaResourceTypeArray;
	rd.res.array.array = a;
	cudaTextureDesc td;
	memset(&td, 0, sizeof td);
	td.filterMode = cudaFilterModePoint;
	td.normalizedCoords = 1;
	cudaTextureObject_t t;
	CHECK(cudaCreateTextureObject(&t, &rd, &td, NULL));

	float4 looks[18];
	int n = 0;
	for (int axis = 0; axis < 3; axis++)
		for (int sign = -1; sign <= 1; sign += 2) {
			float d[3] = {0.3f, -0.45f, 0.2f};
			d[axis] = 1.5f * sign;
			looks[n++] = make_float4(d[0], d[1], d[2], 0);
			d[(axis + 1) % 3] = -0.9f * sign;
			looks[n++] = make_float4(d[0], d[1], d[2], 0);
			looks[n++] = make_float4(axis == 0 ? sign : 0, axis == 1 ? sign : 0, axis == 2 ? sign : 0, 0);
		}
	float4 *in = devLooks(looks, n);
	float *out, got[18];
	CHECK(cudaMalloc(&out, n * sizeof(float)));
	int layer = layers ? layers - 1 : -1;
	cube<<<1, n>>>(t, in, out, layer);
	CHECK(cudaGetLastError());
	CHECK(cudaMemcpy(got, out, n * sizeof(float), cudaMemcpyDeviceToHost));
	for (int i = 0; i < n; i++) {
		int x, y, face = facePoint(looks[i].x, looks[i].y, looks[i].z, &x, &y);
		float want = cubeTexel(layer < 0 ? 0 : layer, face, x, y);
		if (got[i] != want)
			FAIL("cube map (%d layers) at (%g, %g, %g) = %g, want %g (face %d, texel %d, %d)", layers, looks[i].x,
				looks[i].y, looks[i].z, got[i], want, face, x, y);
	}
	CHECK(cudaDestroyTextureObject(t));
	CHECK(cudaFree(in));
	CHECK(cudaFree(out));
	CHECK(cudaFreeArray(a));
}

int main(void) {
	CHECK(cudaSetDevice(0));
	mipmapped();
	cubes(0);
	cubes(2);
	/* a cube map must be square, with six faces */
	cudaChannelFormatDesc f = cudaCreateChannelDesc<float>();
	cudaArray_t a;
	if (cudaMalloc3DArray(&a, &f, make_cudaExtent(CW, CW, 5), cudaArrayCubemap) != cudaErrorInvalidValue)
		FAIL("a cube map of 5 faces was made");
	cudaGetLastError();
	printf("rt_texlod: ok\n");
	return 0;
}
