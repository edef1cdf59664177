"""A stand-in for vLLM V0's vllm.worker.worker_base (tests only): the V0
engine steps through LocalOrDistributedWorkerBase.execute_model and never
imports vllm.v1.worker.gpu_worker."""
from vllm.model_executor.tiny_model import TinyModel


class LocalOrDistributedWorkerBase(object):
    def __init__(self, seed=0):
        self.model = TinyModel(seed=seed)

    @property
    def steps(self):
        return self.model.steps

    def execute_model(self, execute_model_req):
        self.model.steps += 1
        tokens = int(execute_model_req.total_num_scheduled_tokens)
        return self.model.sample(self.model.forward(max(tokens, 1)))
