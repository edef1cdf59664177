"""A vLLM-shaped stand-in for vllm.v1.worker.gpu_worker (tests only).

Worker.execute_model(self, scheduler_output) runs a few torch CPU operators
per step, shaped like one transformer layer (matmul, layer norm, softmax,
scaled dot-product attention), and returns a deterministic result. It
imports nothing from the probe: it stands for the real vLLM.
"""
import torch


class Worker:
    """One model worker (a tiny transformer layer on CPU)."""

    def __init__(self, hidden=256, heads=4, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.hidden = hidden
        self.heads = heads
        self.w_qkv = torch.randn(hidden, 3 * hidden, generator=g) / hidden ** 0.5
        self.w_out = torch.randn(hidden, hidden, generator=g) / hidden ** 0.5
        self.w_mlp = torch.randn(hidden, 2 * hidden, generator=g) / hidden ** 0.5
        self.w_down = torch.randn(2 * hidden, hidden, generator=g) / hidden ** 0.5
        self.norm = torch.nn.LayerNorm(hidden)
        self.steps = 0

    def execute_model(self, scheduler_output):
        """Runs one step for the scheduled tokens; returns a float checksum."""
        self.steps += 1
        tokens = max(1, int(scheduler_output.total_num_scheduled_tokens))
        with torch.no_grad():
            x = torch.sin(torch.arange(tokens * self.hidden, dtype=torch.float32)
                          .reshape(tokens, self.hidden) * 0.01 + self.steps)
            h = self.norm(x)
            q, k, v = torch.matmul(h, self.w_qkv).chunk(3, dim=-1)
            d = self.hidden // self.heads
            q = q.reshape(tokens, self.heads, d).transpose(0, 1)
            k = k.reshape(tokens, self.heads, d).transpose(0, 1)
            v = v.reshape(tokens, self.heads, d).transpose(0, 1)
            att = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) / d ** 0.5,
                                dim=-1)
            o = torch.matmul(att, v).transpose(0, 1).reshape(tokens, self.hidden)
            x = x + torch.matmul(o, self.w_out)
            x = x + torch.matmul(torch.relu(torch.matmul(self.norm(x), self.w_mlp)),
                                 self.w_down)
            return float(x.sum())
