"""The CUDA workload of the GPU check, shaped like the sample worker.

Worker.execute_model(scheduler_output) runs, per step: a copy of the input
to the GPU (pinned host -> device), a layer norm, QKV / attention / MLP
matmuls, a softmax, and a copy of the result back to the host (device ->
pinned host, which synchronizes). Sizes are large enough that the GPU is
busy for most of a step, so kernel time and torch.cuda.Event time of the
same steps are comparable. Falls back to the CPU (for a dry run of the
script plumbing on a machine without a GPU) when CUDA is absent.
"""
import torch


class Worker:
    def __init__(self, hidden=2048, tokens=1024, heads=16, seed=0,
                 device=None):
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cpu":  # Dry run: small, the plumbing is the point.
            hidden, tokens, heads = 256, 64, 4
        g = torch.Generator().manual_seed(seed)
        self.hidden, self.tokens, self.heads = hidden, tokens, heads
        dev = self.device

        def w(a, b):
            return (torch.randn(a, b, generator=g) / a ** 0.5).to(dev)

        self.w_qkv = w(hidden, 3 * hidden)
        self.w_out = w(hidden, hidden)
        self.w_mlp = w(hidden, 4 * hidden)
        self.w_down = w(4 * hidden, hidden)
        self.norm = torch.nn.LayerNorm(hidden).to(dev)
        pin = self.device == "cuda"
        self.host_in = torch.randn(tokens, hidden, generator=g)
        if pin:
            self.host_in = self.host_in.pin_memory()
        self.host_out = torch.empty(tokens, hidden)
        if pin:
            self.host_out = self.host_out.pin_memory()
        self.steps = 0

    def execute_model(self, scheduler_output=None):
        self.steps += 1
        t, h, nh = self.tokens, self.hidden, self.heads
        d = h // nh
        with torch.no_grad():
            x = self.host_in.to(self.device, non_blocking=True)  # HtoD
            x = x + self.steps * 1e-3
            y = self.norm(x)
            q, k, v = torch.matmul(y, self.w_qkv).chunk(3, dim=-1)
            q = q.reshape(t, nh, d).transpose(0, 1)
            k = k.reshape(t, nh, d).transpose(0, 1)
            v = v.reshape(t, nh, d).transpose(0, 1)
            att = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) / d ** 0.5,
                                dim=-1)
            o = torch.matmul(att, v).transpose(0, 1).reshape(t, h)
            x = x + torch.matmul(o, self.w_out)
            x = x + torch.matmul(torch.relu(torch.matmul(self.norm(x),
                                                         self.w_mlp)),
                                 self.w_down)
            self.host_out.copy_(x)  # DtoH; synchronizes the step.
            return float(self.host_out[0, 0])
