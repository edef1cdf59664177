/* The public header compiles as C and the C ABI behaves as documented when
 * no collector is there: nothing captured until asked, a requested capture
 * starts at the next step and runs for its steps, nothing blocks. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vllm_profiler/probe.h"

#define CHECK(c)                                                            \
  do {                                                                      \
    if (!(c)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
      return 1;                                                             \
    }                                                                       \
  } while (0)

int main(void) {
  setenv("VLLM_PROFILER_SOCKET", "/nonexistent/vllm-profiler-test.sock", 1);
  setenv("VLLM_PROFILER_START_STEP", "1000000", 1);
  setenv("VLLM_PROFILER_GPU", "0", 1);
  setenv("VLLM_PROFILER_LOG", "quiet", 1);
  CHECK(strcmp(vp_version(), "0.1.0") == 0);
  CHECK(vp_abi_version() == VP_ABI_VERSION);
  CHECK(vp_is_capturing() == 0);
  CHECK(vp_op_begin("aten::mm", -1, NULL, 0) == 0); /* Before any step. */
  CHECK(vp_init("c_api_test", NULL, NULL) == 0);
  CHECK(vp_step_begin() == 1);
  CHECK(vp_is_capturing() == 0);
  CHECK(vp_op_begin("aten::mm", -1, NULL, 0) == 0);
  vp_step_end();
  CHECK(vp_request_capture(2, 0, 1) == 0);
  CHECK(vp_request_capture(2, 0, 1) == -1); /* One pending at a time. */
  for (int i = 0; i < 4; ++i) {
    int64_t step = vp_step_begin();
    CHECK(step == 2 + i);
    int capturing = vp_is_capturing();
    CHECK(capturing == (step == 2 || step == 3));
    CHECK(vp_record_shapes() == (capturing ? 1 : 0));
    int64_t dims[2] = {2, 3};
    vp_tensor_meta in[1] = {{dims, 2, "float"}};
    uint64_t id = vp_op_begin("aten::mm", 5, in, 1);
    CHECK((id != 0) == (capturing != 0));
    vp_step_annotate(1, 2, 0, 1);
    vp_counter("c", 1.0);
    vp_instant("i");
    vp_set_thread_name("main");
    vp_op_end(id);
    vp_step_end();
  }
  /* ABI 2: the step model's calls, capturing and not. */
  vp_set_identity(1, 1, 2);
  vp_add_wrapped_target("m:W.execute_model+sample_tokens");
  vp_set_op_source("off", "test");
  CHECK(vp_step_begin_ex() == 6 * 2); /* Step 6, not capturing. */
  /* The flight recorder (on by default) keeps the open step's spans. */
  CHECK(vp_flight_level() == 1);
  uint64_t ring_span = vp_span_begin("execute_model");
  CHECK(ring_span != 0);
  vp_span_end(ring_span);
  vp_step_end();
  CHECK(vp_span_begin("execute_model") == 0); /* No open step, no capture. */
  /* ABI 4: the flight recorder's step through the slots. */
  int64_t* slots = vp_step_slots();
  CHECK(slots != NULL && slots == vp_step_slots());
  for (int i = 0; i < 7; ++i) slots[i] = i + 1;
  slots[VP_SLOT_REQUEST_IDS_TOTAL] = 2;
  CHECK(vp_step_begin_slots("a,b") == 7 * 2); /* Step 7, not capturing. */
  slots[VP_SLOT_EXECUTE_END_NS] = 1;
  slots[VP_SLOT_SAMPLE_BEGIN_NS] = 0;
  vp_step_end_slots(NULL);
  CHECK(vp_step_begin_slots(NULL) == 8 * 2);
  vp_step_end_slots("ValueError");
  CHECK(vp_request_capture(1, 0, 0) == 0);
  CHECK(vp_step_begin_ex() == 9 * 2 + 1); /* Step 9 captures. */
  uint64_t span = vp_span_begin("execute_model");
  CHECK(span != 0);
  vp_step_arg_int("num_new_requests", 3);
  vp_step_arg_str("request_ids", "a,b");
  vp_span_end(span);
  vp_step_end_error("RuntimeError");
  CHECK(vp_is_capturing() == 0);
  vp_span_end(0); /* Ignored. */
  vp_stats st;
  vp_get_stats(&st);
  CHECK(st.enabled == 1);
  CHECK(st.captures_started == 2);
  CHECK(st.captures_finished == 2);
  CHECK(st.connected == 0);
  vp_shutdown(2000);
  vp_shutdown(2000);           /* Twice is fine. */
  CHECK(vp_step_begin() == 0); /* After shutdown: inert. */
  printf("PASS\n");
  return 0;
}
