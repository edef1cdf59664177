"""The model both engine stand-ins run (tests only): one transformer layer
on CPU and its sampler, shaped like vLLM's operators. Shared by the V1
model runner and the V0 worker stand-ins without either importing the
other (a V0 process must never import the V1 worker).
"""
import torch


class ModelRunnerOutput(object):
    """What a step returns: one float per step (deterministic checksum)."""

    def __init__(self, value):
        self.value = value


EMPTY_OUTPUT = ModelRunnerOutput(0.0)


class TinyModel(object):
    """A tiny transformer layer on CPU with vLLM-like torch operators."""

    def __init__(self, hidden=256, heads=4, vocab=512, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.hidden = hidden
        self.heads = heads
        self.w_qkv = torch.randn(hidden, 3 * hidden, generator=g) / hidden ** 0.5
        self.w_out = torch.randn(hidden, hidden, generator=g) / hidden ** 0.5
        self.w_mlp = torch.randn(hidden, 2 * hidden, generator=g) / hidden ** 0.5
        self.w_down = torch.randn(2 * hidden, hidden, generator=g) / hidden ** 0.5
        self.w_vocab = torch.randn(hidden, vocab, generator=g) / hidden ** 0.5
        self.norm = torch.nn.LayerNorm(hidden)
        self.steps = 0

    def forward(self, tokens):
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
            return x + torch.matmul(
                torch.relu(torch.matmul(self.norm(x), self.w_mlp)), self.w_down)

    def sample(self, hidden_states):
        with torch.no_grad():
            logits = torch.matmul(hidden_states[-4:], self.w_vocab)
            probs = torch.softmax(logits, dim=-1)
            ids = torch.argmax(probs, dim=-1)
            return ModelRunnerOutput(float(hidden_states.sum()) +
                                     float(ids.sum()) * 1e-3)

    def pool(self, hidden_states):
        with torch.no_grad():
            return ModelRunnerOutput(float(hidden_states.mean(dim=0).sum()))
