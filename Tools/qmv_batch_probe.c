// Probe (not a test): the batched VNNI qmv (tk_qmv_prepared_batch) against
// the one-row kernel run row by row, on one thread, in CPU time (the box is
// shared: wall time mostly measures the other processes). Shapes as SmolLM2's
// (4-bit group 32 layers, the 8-bit 49152x576 head), float32 x, float16
// scales (a GGUF's), output rows in chunks of 192 as the pool's chunks.
// Build and run (x86-64 with AVX-512 VNNI):
//   K=Sources/CTesseraKernels; clang -O3 -I$K/include -I$K $K/*.c Tools/qmv_batch_probe.c -o /tmp/qmv_batch_probe -ldl -lm -lpthread
//   /tmp/qmv_batch_probe BITS N K M [XB]   e.g. 8 49152 576 8 2   (XB: bytes per x value, 2 = the CLI's
//   `high`, 3 = `highest`, the default). It first checks the batch kernel against the one-row kernel bit for bit.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include "CTesseraKernels.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  int bits=atoi(argv[1]); long N=atol(argv[2]), K=atol(argv[3]), M=atol(argv[4]); int group=32, dt=TK_F32, sdt=TK_F16;
  long words=K*bits/32; uint32_t*wq=malloc(N*words*4); for(long i=0;i<N*words;i++) wq[i]=rand();
  uint16_t*sc=malloc(N*K/group*2),*bi=malloc(N*K/group*2); float one=0.01f; for(long i=0;i<N*K/group;i++){tk_convert(TK_F32,&one,TK_F16,sc+i,1);bi[i]=sc[i];}
  float*x=malloc(M*K*4); for(long i=0;i<M*K;i++) x[i]=rand()/(float)RAND_MAX-0.5f;
  long sb=tk_qmv_scratch(dt,1,K,group,bits), stride=(sb+63)/64*64; char*scr=aligned_alloc(64,stride*M);
  if(argc>5) tk_set_qmv_x_bytes(atoi(argv[5]));
  for(long m=0;m<M;m++) tk_qmv_prepare(dt,x+m*K,1,K,group,bits,scr+m*stride);
  float*o=malloc(M*N*4),*o2=malloc(M*N*4); long rows=192;
  for(long c=0;c<N;c+=rows){long e=c+rows<N?c+rows:N; for(long m=0;m<M;m++) tk_qmv_prepared(dt,sdt,scr+m*stride,wq,sc,bi,o2+m*N,1,N,K,group,bits,c,e);}
  for(long c=0;c<N;c+=rows){long e=c+rows<N?c+rows:N; tk_qmv_prepared_batch(dt,sdt,scr,stride,wq,sc,bi,o,M,N,K,group,bits,c,e);}
  printf("batch equals the one-row kernel bit for bit: %s\n", memcmp(o,o2,M*N*4)==0?"yes":"NO");
  for(int rep=0;rep<3;rep++){
    double t0=now();
    for(long c=0;c<N;c+=rows){long e=c+rows<N?c+rows:N; for(long m=0;m<M;m++) tk_qmv_prepared(dt,sdt,scr+m*stride,wq,sc,bi,o+m*N,1,N,K,group,bits,c,e);}
    double t1=now();
    for(long c=0;c<N;c+=rows){long e=c+rows<N?c+rows:N; tk_qmv_prepared_batch(dt,sdt,scr,stride,wq,sc,bi,o,M,N,K,group,bits,c,e);}
    double t2=now();
    for(long c=0;c<N;c+=rows){long e=c+rows<N?c+rows:N; tk_qmv_prepared(dt,sdt,scr,wq,sc,bi,o,1,N,K,group,bits,c,e);}
    double t3=now();
    printf("bits %d %ldx%ld M=%ld: per-row %.0f us (%.0f/row)  batch %.0f us (%.0f/row)  one row alone %.0f us\n",bits,N,K,M,(t1-t0)*1e6,(t1-t0)*1e6/M,(t2-t1)*1e6,(t2-t1)*1e6/M,(t3-t2)*1e6);
  }
}
