/* Wake latency of the two thread runtimes fastconv had (issue 16), measured outside Python.
 *
 *   gcc -O2 -fopenmp -DFC_OPENMP=1 -Iinclude benchmarks/wake_latency.c -o /tmp/wake -lpthread
 *   OMP_WAIT_POLICY=PASSIVE /tmp/wake omp      # libgomp, sleeping workers (fastconv's setting)
 *   GOMP_SPINCOUNT=N /tmp/wake omp             # libgomp, spin N polls then sleep
 *   /tmp/wake team                             # runtime/team.h: poll FC_TEAM_POLL_NS, sleep
 *
 * Each "call" splits WORK_NS of busy work over the threads. Prints, per thread count, the mean
 * of 1000 back-to-back calls, the median first call after a 50 ms sleep, and the CPU time the
 * process used in the 100 ms after its last call.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

#include "fastconv/runtime/team.h"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

static double cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1e6 +
           ru.ru_stime.tv_usec;
}

static volatile double sink;
static long iters_per_us = 1;

static void spin_work(long iters)
{
    double a = 1.0;
    for (long i = 0; i < iters; i++) a = a * 1.0000001 + 1e-9;
    sink = a;
}

static long total_iters;
#define CHUNKS 32
static void team_body(void *ctx, int64_t c, int slot)
{
    (void)ctx, (void)c, (void)slot;
    spin_work(total_iters / CHUNKS);
}

static void call(int mode, int nt)
{
    if (mode == 0) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)
        for (int c = 0; c < CHUNKS; c++) spin_work(total_iters / CHUNKS);
    } else {
        fc_team_run(team_body, NULL, CHUNKS, nt);
    }
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const int mode = argc > 1 && !strcmp(argv[1], "team");
    const double work_us = argc > 2 ? atof(argv[2]) : 50.0;
    /* calibrate the busy loop */
    double t0 = now_us();
    spin_work(20000000);
    iters_per_us = (long)(20000000 / (now_us() - t0));
    for (int nt = 1; nt <= 2; nt++) {
        total_iters = (long)(work_us * iters_per_us);
        for (int i = 0; i < 200; i++) call(mode, nt);
        double best = 1e30;
        for (int rep = 0; rep < 5; rep++) {
            t0 = now_us();
            for (int i = 0; i < 1000; i++) call(mode, nt);
            double mean = (now_us() - t0) / 1000;
            if (mean < best) best = mean;
        }
        double idle[15];
        for (int rep = 0; rep < 15; rep++) {
            call(mode, nt);
            usleep(50000);
            t0 = now_us();
            call(mode, nt);
            idle[rep] = now_us() - t0;
        }
        qsort(idle, 15, sizeof(double), cmp);
        call(mode, nt);
        double c0 = cpu_us();
        usleep(100000);
        double idle_cpu = cpu_us() - c0;
        printf("%s work=%.0fus threads=%d back-to-back %.1f us/call  after-50ms-idle median %.1f "
               "us (min %.1f max %.1f)  cpu in 100ms idle %.0f us\n",
               mode ? "team" : "omp", work_us, nt, best, idle[7], idle[0], idle[14], idle_cpu);
    }
    return 0;
}
