"""What a step carries: the batch read from vLLM's SchedulerOutput.

Read defensively (vllm/v1/core/sched/output.py changes between releases):
a missing or odd attribute leaves its value out, never raises.

  num_scheduled_requests  len(num_scheduled_tokens)
  num_scheduled_tokens    total_num_scheduled_tokens
  num_prefill_requests    requests scheduling more tokens than one plus
                          their speculative tokens (new prompts and chunked
                          prefill continuations)
  num_decode_requests     the other scheduled requests
  num_new_requests        len(scheduled_new_reqs)
  num_resumed_requests    requests resumed from preemption
  num_finished_requests   len(finished_req_ids)
  request_ids             the first 64 scheduled request ids, comma-joined
  request_ids_total       how many there were
"""

import struct

MAX_REQUEST_IDS = 64
_MAX_ID_BYTES = 128


def _len(value):
    try:
        return len(value)
    except Exception:
        return -1


def batch_shape(so):
    """(num_requests, num_tokens, num_prefill, num_decode); -1 = unknown."""
    n_req = n_tok = n_pre = n_dec = -1
    try:
        per_req = getattr(so, "num_scheduled_tokens", None)
        if isinstance(per_req, dict):
            n_req = len(per_req)
        total = getattr(so, "total_num_scheduled_tokens", None)
        if isinstance(total, int):
            n_tok = total
        elif isinstance(per_req, dict):
            n_tok = int(sum(per_req.values()))
        if isinstance(per_req, dict):
            spec = getattr(so, "scheduled_spec_decode_tokens", None)
            if not isinstance(spec, dict):
                spec = {}
            n_pre = 0
            for req_id, tokens in per_req.items():
                n_spec = max(0, _len(spec.get(req_id, ())))
                if tokens > 1 + n_spec:
                    n_pre += 1
            n_dec = n_req - n_pre
        else:
            new = getattr(so, "scheduled_new_reqs", None)
            cached = getattr(so, "scheduled_cached_reqs", None)
            if new is not None and cached is not None:
                n_pre = _len(new)
                n_dec = _len(getattr(cached, "req_ids", cached))
                if n_pre >= 0 and n_dec >= 0:
                    n_req = n_pre + n_dec
                else:
                    n_pre = n_dec = -1
    except Exception:
        pass
    return n_req, n_tok, n_pre, n_dec


def request_counts(so):
    """[(key, count)] of new, resumed and finished requests (known ones)."""
    out = []
    try:
        new = getattr(so, "scheduled_new_reqs", None)
        if new is not None and _len(new) >= 0:
            out.append(("num_new_requests", _len(new)))
        cached = getattr(so, "scheduled_cached_reqs", None)
        resumed = getattr(cached, "resumed_req_ids", None)  # >= 0.11
        if resumed is not None and _len(resumed) >= 0:
            out.append(("num_resumed_requests", _len(resumed)))
        else:
            flags = getattr(cached, "resumed_from_preemption", None)  # older
            if isinstance(flags, (list, tuple)):
                out.append(("num_resumed_requests", sum(1 for f in flags if f)))
        finished = getattr(so, "finished_req_ids", None)
        if finished is not None and _len(finished) >= 0:
            out.append(("num_finished_requests", _len(finished)))
    except Exception:
        pass
    return out


def request_ids(so):
    """(first MAX_REQUEST_IDS ids comma-joined, total) or None."""
    try:
        per_req = getattr(so, "num_scheduled_tokens", None)
        if not isinstance(per_req, dict):
            return None
        ids = []
        for i, req_id in enumerate(per_req):
            if i >= MAX_REQUEST_IDS:
                break
            ids.append(str(req_id)[:_MAX_ID_BYTES].replace(",", "%2C"))
        return ",".join(ids), len(per_req)
    except Exception:
        return None


def annotate(lib, so):
    """Records the step's batch on the open step (capturing only)."""
    lib.vp_step_annotate(*batch_shape(so))
    for key, value in request_counts(so):
        lib.vp_step_arg_int(key.encode(), value)
    ids = request_ids(so)
    if ids is not None:
        # The core keeps at most 8 KiB of a value; request_ids_total counts
        # every scheduled request.
        lib.vp_step_arg_str(b"request_ids", ids[0].encode("utf-8", "replace"))
        lib.vp_step_arg_int(b"request_ids_total", ids[1])


_PACK_BATCH = struct.Struct("8q").pack_into


def pack_batch(slots, so):
    """Writes the step's batch into the core's step slots 0-7 (the values of
    vp_step_batch, request_ids_total last) and returns the request ids
    (bytes, or None): the same values as annotate(), read in one pass with
    plain attribute reads (each getattr() with a default is a call). Never
    raises; an odd SchedulerOutput is read the careful way."""
    try:
        per_req = so.num_scheduled_tokens
        if type(per_req) is not dict:
            return _pack_careful(slots, so)
        n_req = len(per_req)
        tok = so.total_num_scheduled_tokens
        if type(tok) is not int:
            return _pack_careful(slots, so)
        if tok == n_req:
            n_pre = 0  # One token per request: every one is decoding.
        else:
            spec = so.scheduled_spec_decode_tokens
            n_pre = 0
            if spec:
                for req_id, tokens in per_req.items():
                    if tokens > 1 + max(0, _len(spec.get(req_id, ()))):
                        n_pre += 1
            else:
                for tokens in per_req.values():
                    if tokens > 1:
                        n_pre += 1
        keys = per_req if n_req <= MAX_REQUEST_IDS else \
            list(per_req)[:MAX_REQUEST_IDS]
        ids = ",".join(keys)  # TypeError for non-str ids: careful path.
        if ids.count(",") != len(keys) - 1 or len(ids) > 64 * _MAX_ID_BYTES:
            return _pack_careful(slots, so)
        _PACK_BATCH(slots, 0, n_req, tok, n_pre, n_req - n_pre,
                    len(so.scheduled_new_reqs),
                    len(so.scheduled_cached_reqs.resumed_req_ids),
                    len(so.finished_req_ids), n_req)
        return ids.encode("utf-8", "replace")
    except Exception:
        return _pack_careful(slots, so)


def _pack_careful(slots, so):
    try:
        shape = batch_shape(so)
        counts = dict(request_counts(so))
        ids = request_ids(so)
        _PACK_BATCH(slots, 0, shape[0], shape[1], shape[2], shape[3],
                    counts.get("num_new_requests", -1),
                    counts.get("num_resumed_requests", -1),
                    counts.get("num_finished_requests", -1),
                    ids[1] if ids else 0)
        return ids[0].encode("utf-8", "replace") if ids else None
    except Exception:
        _PACK_BATCH(slots, 0, -1, -1, -1, -1, -1, -1, -1, 0)
        return None
