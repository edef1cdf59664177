"""The attributes of vllm.v1.core.sched.output we read (tests only)."""


class NewRequestData(object):
    def __init__(self, req_id, prompt_len):
        self.req_id = req_id
        self.prompt_token_ids = list(range(prompt_len))
        self.num_computed_tokens = 0


class CachedRequestData(object):
    def __init__(self, req_ids, resumed_req_ids=()):
        self.req_ids = list(req_ids)
        self.resumed_req_ids = set(resumed_req_ids)


class SchedulerOutput(object):
    """Step `step` of a steady batch: 4 decoding requests, a new 32-token
    prompt every 10th step, a preempted request resumed every 7th step, one
    finished every 5th; steps listed in `empty` schedule nothing."""

    def __init__(self, step, empty=False):
        n_new = 1 if step % 10 == 0 else 0
        decode_ids = ["req-%d" % i for i in range(4)]
        new = [NewRequestData("new-%d" % step, 32)] if n_new else []
        if empty:
            new, decode_ids = [], []
        resumed = ["req-0"] if step % 7 == 0 and decode_ids else []
        self.scheduled_new_reqs = new
        self.scheduled_cached_reqs = CachedRequestData(decode_ids, resumed)
        self.num_scheduled_tokens = {r: 1 for r in decode_ids}
        for r in new:
            self.num_scheduled_tokens[r.req_id] = len(r.prompt_token_ids)
        self.total_num_scheduled_tokens = sum(self.num_scheduled_tokens.values())
        self.scheduled_spec_decode_tokens = {}
        self.finished_req_ids = {"done-%d" % step} if step % 5 == 0 else set()


class GrammarOutput(object):
    def __init__(self):
        self.structured_output_request_ids = []
