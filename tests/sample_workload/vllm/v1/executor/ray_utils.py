"""A stand-in for vllm.v1.executor.ray_utils.RayWorkerWrapper (tests only).

vLLM's Ray compiled graph calls execute_model_ray, which drives the model
runner directly and never goes through Worker.execute_model.
"""


class RayWorkerWrapper(object):
    def __init__(self, worker):
        self.worker = worker

    def execute_model_ray(self, execute_model_input):
        scheduler_output, grammar_output = execute_model_input
        output = self.worker.model_runner.execute_model(scheduler_output, None)
        if output is None:
            output = self.worker.model_runner.sample_tokens(grammar_output)
        return output
