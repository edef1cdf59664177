"""A vLLM-shaped stand-in for vllm.v1.worker.gpu_worker (tests only).

Worker delegates to its GPUModelRunner as vLLM's does: execute_model, and
sample_tokens where the API shape has it (see gpu_model_runner.py). It
carries vLLM's identity attributes (rank, local_rank, parallel_config).
It imports nothing from the probe: it stands for the real vLLM.
"""
from vllm.v1.worker.gpu_model_runner import PAIRED, GPUModelRunner


class ParallelConfig(object):
    def __init__(self, world_size):
        self.world_size = world_size
        self.tensor_parallel_size = world_size


class Worker(object):
    """One model worker."""

    def __init__(self, rank=0, local_rank=0, world_size=1, seed=0):
        self.rank = rank
        self.local_rank = local_rank
        self.parallel_config = ParallelConfig(world_size)
        self.model_runner = GPUModelRunner(seed=seed)

    @property
    def steps(self):
        return self.model_runner.steps

    def execute_model(self, scheduler_output):
        """Runs one step for the scheduled tokens (see GPUModelRunner)."""
        return self.model_runner.execute_model(scheduler_output, None)

    if PAIRED:
        def sample_tokens(self, grammar_output):
            """Samples the tokens of the step execute_model ran."""
            return self.model_runner.sample_tokens(grammar_output)
