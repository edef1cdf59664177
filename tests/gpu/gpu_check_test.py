"""Unit test of gpu_check.analyse(): the trace checks the GPU run relies on
must count what they claim (a check that cannot fail is a defect)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpu_check  # noqa: E402

GPU = 1000000007  # "GPU 0 stream 7" track.


def trace(with_flow=True, with_op=True, memcpy_on_cpu=False):
    ev = [
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 77,
         "args": {"name": "python"}},
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": GPU,
         "args": {"name": "GPU 0 stream 7"}},
        {"ph": "X", "cat": "step", "name": "Worker.execute_model", "pid": 1,
         "tid": 77, "ts": 0.5, "dur": 10.0, "args": {"step": 11}},
        {"ph": "X", "cat": "step", "name": "Worker.execute_model", "pid": 1,
         "tid": 77, "ts": 29.0, "dur": 20.0, "args": {"step": 12}},
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 77,
         "ts": 1.0, "dur": 5.0},
        {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel",
         "pid": 1, "tid": 77, "ts": 2.0, "dur": 1.0},
        {"ph": "X", "cat": "kernel", "name": "gemm", "pid": 1, "tid": GPU,
         "ts": 4.0, "dur": 20.0,
         "args": {"op": "aten::mm"} if with_op else {}},
        {"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy HtoD (Pinned -> Device)",
         "pid": 1, "tid": 77 if memcpy_on_cpu else GPU, "ts": 30.0, "dur": 2.0},
        {"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy DtoH (Device -> Pinned)",
         "pid": 1, "tid": GPU, "ts": 40.0, "dur": 3.0},
    ]
    if with_flow:
        ev += [{"ph": "s", "cat": "ac2g", "id": 5, "pid": 1, "tid": 77, "ts": 2.0},
               {"ph": "f", "cat": "ac2g", "id": 5, "pid": 1, "tid": GPU, "ts": 4.0}]
    else:
        # An end without its start does not count.
        ev += [{"ph": "f", "cat": "ac2g", "id": 6, "pid": 1, "tid": GPU, "ts": 4.0}]
    return {"traceEvents": ev,
            "metadata": {"processes": [{"gpu_activity_note": "",
                                        "cupti_version": "libcupti 130001"}]}}


class AnalyseTest(unittest.TestCase):
    def test_complete_trace(self):
        t = gpu_check.analyse(trace(), from_step=12)
        self.assertEqual(t["kernels"], 1)
        self.assertEqual(t["memcpys"], 2)
        self.assertEqual(t["memcpy_htod"], 1)
        self.assertEqual(t["memcpy_dtoh"], 1)
        self.assertEqual(t["gpu_events_on_stream_tracks"], 3)
        self.assertEqual(t["kernels_with_launch_flow"], 1)
        self.assertEqual(t["kernels_attributed_to_op"], 1)
        self.assertAlmostEqual(t["kernel_us"], 20.0)
        self.assertAlmostEqual(t["memcpy_us"], 5.0)
        self.assertEqual(t["gpu_tracks"], ["GPU 0 stream 7"])
        self.assertEqual(t["steps"], 2)
        # From step 12 (ts 29) on: the two copies, not the kernel at ts 4.
        self.assertEqual(t["steady_from_step"], 12)
        self.assertAlmostEqual(t["steady_gpu_us"], 5.0)
        self.assertEqual(t["metadata_notes"], ["cupti_version: libcupti 130001"])

    def test_missing_links_are_counted(self):
        t = gpu_check.analyse(trace(with_flow=False, with_op=False,
                                    memcpy_on_cpu=True))
        self.assertEqual(t["kernels_with_launch_flow"], 0)
        self.assertEqual(t["kernels_attributed_to_op"], 0)
        self.assertEqual(t["gpu_events_on_stream_tracks"], 2)
        self.assertIsNone(t["steady_from_step"])  # No from_step given.


if __name__ == "__main__":
    unittest.main()
