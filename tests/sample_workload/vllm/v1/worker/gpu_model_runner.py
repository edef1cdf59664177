"""A vLLM-shaped stand-in for vllm.v1.worker.gpu_model_runner (tests only).

GPUModelRunner runs a tiny transformer layer on CPU with torch operators
shaped like vLLM's: the forward pass (layer norm, matmul, softmax attention,
MLP) in execute_model and the sampler (logits, softmax, argmax) in
sample_tokens. The API shape follows SAMPLE_VLLM_API, read at import like a
vLLM release is fixed at install:

  0.10     execute_model(scheduler_output) runs forward and sampling and
           returns the output; the class has no sample_tokens.
  0.11     execute_model returns None; sample_tokens(grammar_output) samples
           and returns the output (vLLM >= 0.11.1, PR #26866); it refuses to
           run unless execute_model returned None just before. A step that
           schedules no tokens returns its (empty) output from execute_model.
  async    as 0.11 (the engine does work between the calls: run_workload.py).
  pooling  as 0.11, but execute_model returns the pooled output itself.

It imports nothing from the probe: it stands for the real vLLM.
"""
import os

from vllm.model_executor.tiny_model import (EMPTY_OUTPUT,  # noqa: F401
                                            ModelRunnerOutput, TinyModel)

API = os.environ.get("SAMPLE_VLLM_API", "0.11")
PAIRED = API in ("0.11", "async", "pooling")


class GPUModelRunner(TinyModel):
    """One model runner (a tiny transformer layer on CPU)."""

    def __init__(self, seed=0):
        super().__init__(seed=seed)
        self.execute_model_state = None

    def _tokens(self, scheduler_output):
        return int(scheduler_output.total_num_scheduled_tokens)

    if not PAIRED:
        def execute_model(self, scheduler_output, intermediate_tensors=None):
            """Runs one step (forward and sampling); returns its output."""
            self.steps += 1
            tokens = self._tokens(scheduler_output)
            if tokens == 0:
                return EMPTY_OUTPUT
            return self.sample(self.forward(tokens))
    else:
        def execute_model(self, scheduler_output, intermediate_tensors=None):
            """Runs the forward pass; returns None (sample_tokens follows),
            or the output for pooling models and empty steps."""
            self.steps += 1
            tokens = self._tokens(scheduler_output)
            if tokens == 0:
                return EMPTY_OUTPUT
            hidden = self.forward(tokens)
            if API == "pooling":
                return self.pool(hidden)
            self.execute_model_state = hidden
            return None

        def sample_tokens(self, grammar_output):
            """Samples the tokens of the step execute_model ran."""
            if self.execute_model_state is None:
                raise RuntimeError(
                    "sample_tokens() called without a preceding "
                    "execute_model() that returned None")
            hidden, self.execute_model_state = self.execute_model_state, None
            return self.sample(hidden)
