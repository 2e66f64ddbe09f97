# The subnormal policy at the door to the compiled code (include/fastconv/fpstate.h): every
# driver call is `fp = fc_fp_enter(flushing())`, the nogil call, then `fc_fp_leave(fp)`, so the
# calling thread's floating-point state is back before any error is raised.
cdef extern from "fastconv/fpstate.h" nogil:
    ctypedef unsigned long long fc_fpstate
    fc_fpstate fc_fp_enter(int flush)
    void fc_fp_leave(fc_fpstate saved)
    fc_fpstate fc_fp_get()
    void fc_fp_set(fc_fpstate state)
    int fc_fp_flushing()
