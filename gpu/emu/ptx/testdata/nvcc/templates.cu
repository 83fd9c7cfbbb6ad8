template <typename T> __global__ void axpy(T a, const T *x, T *y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] += a * x[i];
}
template __global__ void axpy<float>(float, const float *, float *, int);
template __global__ void axpy<double>(double, const double *, double *, int);
template __global__ void axpy<int>(int, const int *, int *, int);
template __global__ void axpy<short>(short, const short *, short *, int);
template __global__ void axpy<unsigned char>(unsigned char, const unsigned char *, unsigned char *, int);
