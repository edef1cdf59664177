"""Builds the torch shim (libvllm_profiler_torch.so) in the process that
needs it, for a torch the bundled shim was not compiled against.

    reason = _shim_build.precheck(torch, probe_dir)      # cheap, any thread
    if reason is None:
        _shim_build.start(torch, probe_dir, log, on_done)  # returns a Thread
    # later, on that thread: on_done(path_or_None, info)

    path, info = _shim_build.build_or_load(torch, probe_dir, log)  # blocking

What it does: compiles `<probe_dir>/torch_shim/torch_shim.cc` (shipped in the
probe bundle with the C header it includes) with the host's C++ compiler
(`CXX`, else g++, c++, clang++) against the running torch: the headers under
`torch/include`, the libtorch_cpu/libc10/libtorch files this process has
loaded (from /proc/self/maps), `torch._C._GLIBCXX_USE_CXX11_ABI`, and the C++
standard its headers demand (C++17, C++20 once they say so).

Contract:
- Never raises. Each build_or_load() call writes exactly one line through
  `log` (built, from the cache, built by another process, or why not) and
  returns (path or None, info). `info` holds only str/int/float values for
  the trace metadata and `vpctl status`: outcome ("built", "cached",
  "waited", "disabled", "unavailable", "failed", "timeout", "error"),
  reason, seconds (this call), build_seconds (the build that made the file),
  compiler, torch_version, cxx_abi, std, cache_dir, path, key, line.
- Only ever compiles in a child process: nice 19, its own session, the whole
  group killed after VLLM_PROFILER_SHIM_BUILD_TIMEOUT seconds (default 300).
  VLLM_PROFILER_SHIM_BUILD=0 turns building off.
- Cache folder, the first that is writable and has 64 MiB free:
  VLLM_PROFILER_CACHE_DIR; VLLM_PROFILER_CACHE_VOLUME (the writable volume
  the webhook mounts; the probe folder itself is read-only there);
  $XDG_CACHE_HOME/vllm-profiler; ~/.cache/vllm-profiler;
  <tempdir>/vllm-profiler-<uid>.
- An entry is torch-shim-<key>.so plus torch-shim-<key>.json, written last
  (the commit marker) with the library's sha256. The key hashes the torch
  version and git version, the loaded libtorch_cpu's path, size and mtime,
  the ABI, the C++ standard, the compiler's path and `--version`, and the
  shim source and header bytes (so a new probe version builds anew).
- Processes: one builds under a POSIX lock (fcntl.lockf) on
  torch-shim-<key>.lock, the others wait for it (up to the time limit) and
  load its result; files appear by atomic rename. POSIX locks belong to the
  process, so a child forked mid-build does not inherit the lock. Threads of
  one process serialise on a threading.Lock.
- An entry whose checksum does not match or that dlopen refuses is removed
  and rebuilt once.
- Loading a built library into the process (dlopen, no torch callback yet)
  is part of the check; connecting it to the core is the caller's
  (_native.load_torch_shim).
"""
import ctypes
import errno
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time

SOURCE_DIR = "torch_shim"            # inside the probe folder
SOURCE_NAME = "torch_shim.cc"
HEADER = os.path.join("vllm_profiler", "probe.h")
ENV_BUILD = "VLLM_PROFILER_SHIM_BUILD"
ENV_TIMEOUT = "VLLM_PROFILER_SHIM_BUILD_TIMEOUT"
ENV_CACHE_DIR = "VLLM_PROFILER_CACHE_DIR"
ENV_CACHE_VOLUME = "VLLM_PROFILER_CACHE_VOLUME"
DEFAULT_TIMEOUT_S = 300.0
MIN_FREE_BYTES = 64 << 20
COMPILERS = ("g++", "c++", "clang++")
_ENTRY_VERSION = "1"

_thread_lock = threading.Lock()


class _Stop(Exception):
    """Ends a build_or_load() with an outcome; never leaves this module."""

    def __init__(self, outcome, reason):
        Exception.__init__(self, reason)
        self.outcome = outcome
        self.reason = reason


def _false(value):
    return (value or "").strip().lower() in ("0", "false", "no", "off")


def disabled(env=None):
    env = os.environ if env is None else env
    return _false(env.get(ENV_BUILD))


def _version_tuple(text):
    m = re.match(r"\s*(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    return tuple(int(x or 0) for x in m.groups()) if m else None


def _torch_dir(torch_module):
    return os.path.dirname(os.path.abspath(torch_module.__file__))


def _header_version(include_dir):
    """"1.13.0" from torch/version.h under include_dir, or None."""
    path = os.path.join(include_dir, "torch", "csrc", "api", "include",
                        "torch", "version.h")
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    parts = [re.search(r"#define\s+TORCH_VERSION_%s\s+(\d+)" % p, text)
             for p in ("MAJOR", "MINOR", "PATCH")]
    if not all(parts):
        return None
    return ".".join(m.group(1) for m in parts)


def precheck(torch_module, probe_dir, torch_version=None, env=None):
    """Why a build cannot start (one short phrase), or None. Cheap: a few
    stat() calls and one small file read; fine on any thread."""
    env = os.environ if env is None else env
    if disabled(env):
        return "building is off (%s=%s)" % (ENV_BUILD, env.get(ENV_BUILD))
    src = os.path.join(probe_dir, SOURCE_DIR)
    if not (os.path.isfile(os.path.join(src, SOURCE_NAME))
            and os.path.isfile(os.path.join(src, HEADER))):
        return "the shim source is not in the probe folder (%s)" % src
    version = torch_version or str(getattr(torch_module, "__version__", ""))
    include = os.path.join(_torch_dir(torch_module), "include")
    found = _header_version(include)
    if found is None:
        return ("no torch C++ headers under %s (a torch without them, or "
                "Debian's python3-torch without libtorch-dev)" % include)
    if _version_tuple(found) != _version_tuple(version):
        return ("the torch headers under %s are for torch %s, this process "
                "runs torch %s" % (include, found, version))
    return None


def _timeout(env):
    text = env.get(ENV_TIMEOUT)
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
        if value > 0:
            return value
    except ValueError:
        pass
    return DEFAULT_TIMEOUT_S


def _find_compiler(env):
    """(argv, shown name) of the host compiler, or None."""
    path = env.get("PATH", os.defpath)
    cxx = env.get("CXX", "").strip()
    if cxx:
        argv = shlex.split(cxx)
        found = shutil.which(argv[0], path=path)
        if found:
            return [found] + argv[1:]
    for name in COMPILERS:
        found = shutil.which(name, path=path)
        if found:
            return [found]
    return None


class _Child(object):
    """One compiler process: nice 19, own session, group killed on timeout."""

    @staticmethod
    def run(argv, timeout, cwd=None):
        """(returncode, output); raises _Stop("timeout") after `timeout` s."""
        nice = shutil.which("nice")
        cmd = ([nice, "-n", "19"] if nice else []) + argv
        try:
            p = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT,
                                 start_new_session=True)
        except OSError as e:
            raise _Stop("failed", "cannot run %s (%s)" % (argv[0], e.strerror))
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.communicate()
            raise _Stop("timeout", "%s ran past the %g s limit (%s) and was "
                        "killed" % (os.path.basename(argv[0]), timeout,
                                    ENV_TIMEOUT))
        return p.returncode, out.decode("utf-8", "replace")


def _compiler_version(argv, timeout):
    rc, out = _Child.run(argv + ["--version"], min(timeout, 30.0))
    first = out.strip().splitlines()[0] if out.strip() else ""
    if rc != 0 or not first:
        raise _Stop("failed", "%s --version failed (exit %d)" % (argv[0], rc))
    return first


def _loaded_torch_libs(torch_module):
    """Paths of libtorch_cpu, libc10 and libtorch as loaded in this process
    (else found in torch/lib), libtorch_cpu first."""
    wanted = ("libtorch_cpu.so", "libc10.so", "libtorch.so")
    found = {}
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.rstrip("\n").split(None, 5)[-1]
                base = os.path.basename(path)
                for w in wanted:
                    if w not in found and (base == w or
                                           base.startswith(w + ".")):
                        found[w] = path
    except OSError:
        pass
    lib_dir = os.path.join(_torch_dir(torch_module), "lib")
    for w in wanted:
        if w not in found and os.path.exists(os.path.join(lib_dir, w)):
            found[w] = os.path.realpath(os.path.join(lib_dir, w))
    if "libtorch_cpu.so" not in found or "libc10.so" not in found:
        raise _Stop("unavailable", "libtorch_cpu/libc10 not found (neither "
                    "loaded nor in %s)" % lib_dir)
    return [found[w] for w in wanted if w in found]


def _cxx_std(include_dir, version):
    """17, or 20 when torch's headers demand it (they #error below a
    __cplusplus value) or the version is 2.14 or later."""
    need = 201703
    for rel in (("c10", "macros", "Macros.h"), ("c10", "util", "C++17.h"),
                ("c10", "macros", "cmake_macros.h")):
        try:
            with open(os.path.join(include_dir, *rel)) as f:
                text = f.read()
        except OSError:
            continue
        for m in re.finditer(r"__cplusplus\s*<\s*(\d{6})L", text):
            need = max(need, int(m.group(1)))
    if (_version_tuple(version) or (0, 0, 0)) >= (2, 14, 0):
        need = max(need, 202002)
    return 20 if need >= 202002 else 17


def _writable(d):
    """None when `d` can hold an entry, else why not."""
    try:
        os.makedirs(d, exist_ok=True)
        st = os.statvfs(d)
        if st.f_bavail * st.f_frsize < MIN_FREE_BYTES:
            return "%s has less than %d MiB free" % (d, MIN_FREE_BYTES >> 20)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=d)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
            os.unlink(probe)
        return None
    except OSError as e:
        return "%s: %s" % (d, e.strerror or e)


def cache_dir(env=None):
    """(folder, skipped reasons) for the first usable cache folder."""
    env = os.environ if env is None else env
    candidates = []
    for name in (ENV_CACHE_DIR, ENV_CACHE_VOLUME):
        if env.get(name):
            candidates.append(env[name])
    if env.get("XDG_CACHE_HOME"):
        candidates.append(os.path.join(env["XDG_CACHE_HOME"], "vllm-profiler"))
    home = env.get("HOME") or os.path.expanduser("~")
    if home and home != "~":
        candidates.append(os.path.join(home, ".cache", "vllm-profiler"))
    no_temp = None
    try:
        candidates.append(os.path.join(tempfile.gettempdir(),
                                       "vllm-profiler-%d" % os.getuid()))
    except (OSError, IOError):  # tempfile found no writable folder either
        no_temp = "no writable temp folder"
    skipped = []
    for d in candidates:
        why = _writable(d)
        if why is None:
            return d, skipped
        skipped.append(why)
    return None, skipped + ([no_temp] if no_temp else [])


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _dlopen_check(path, version):
    """None when `path` loads and says it was built for `version`."""
    try:
        lib = ctypes.CDLL(path)
        fn = lib.vp_torch_shim_built_for
        fn.restype = ctypes.c_char_p
        built = (fn() or b"").decode("utf-8", "replace")
    except (OSError, AttributeError) as e:
        return "does not load (%s)" % (e,)
    if _version_tuple(built) != _version_tuple(version):
        return "was built for torch %s" % built
    return None


class _Entry(object):
    """torch-shim-<key>.{so,json,lock} in one cache folder."""

    def __init__(self, folder, key):
        base = os.path.join(folder, "torch-shim-" + key)
        self.so, self.meta, self.lock = base + ".so", base + ".json", base + ".lock"

    def read(self, version):
        """(meta dict, None) when complete and sound; (None, None) when
        absent; (None, why) when present but unusable."""
        try:
            with open(self.meta) as f:
                meta = json.load(f)
        except FileNotFoundError:
            return None, None
        except (OSError, ValueError) as e:
            return None, "unreadable metadata (%s)" % (e,)
        try:
            if _sha256_file(self.so) != meta.get("sha256"):
                return None, "checksum mismatch"
        except OSError as e:
            return None, "library missing (%s)" % (e.strerror,)
        why = _dlopen_check(self.so, version)
        return (meta, None) if why is None else (None, why)

    def remove(self):
        for p in (self.meta, self.so):
            try:
                os.unlink(p)
            except OSError:
                pass


def _acquire(fd, path, deadline):
    """Waits for the POSIX lock on `fd` (open on `path`); returns seconds
    waited."""
    t0 = time.monotonic()
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return time.monotonic() - t0
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EAGAIN):
                raise _Stop("failed", "cannot lock %s (%s)" % (path,
                                                              e.strerror))
        if time.monotonic() > deadline:
            raise _Stop("timeout", "another process held the build lock for "
                        "%.0f s" % (time.monotonic() - t0))
        time.sleep(0.1)


class _Plan(object):
    """Everything the compile needs, and the cache key derived from it."""

    def __init__(self, torch_module, probe_dir, version, env):
        self.version = version
        self.timeout = _timeout(env)
        tdir = _torch_dir(torch_module)
        self.include = os.path.join(tdir, "include")
        self.src_dir = os.path.join(probe_dir, SOURCE_DIR)
        self.libs = _loaded_torch_libs(torch_module)
        self.abi = int(bool(getattr(getattr(torch_module, "_C", None),
                                    "_GLIBCXX_USE_CXX11_ABI", True)))
        self.std = _cxx_std(self.include, version)
        self.compiler = _find_compiler(env)
        if self.compiler is None:
            raise _Stop("unavailable", "no C++ compiler (CXX, %s) on PATH"
                        % ", ".join(COMPILERS))
        self.compiler_version = _compiler_version(self.compiler, self.timeout)
        st = os.stat(self.libs[0])
        h = hashlib.sha256()
        for part in (_ENTRY_VERSION, version,
                     str(getattr(getattr(torch_module, "version", None),
                                 "git_version", "")),
                     self.libs[0], str(st.st_size), str(st.st_mtime_ns),
                     str(self.abi), str(self.std), " ".join(self.compiler),
                     self.compiler_version):
            h.update(part.encode("utf-8", "replace") + b"\0")
        for rel in (SOURCE_NAME, HEADER):
            with open(os.path.join(self.src_dir, rel), "rb") as f:
                h.update(f.read())
        self.key = h.hexdigest()[:20]

    def argv(self, out):
        lib_dirs = sorted(set(os.path.dirname(p) for p in self.libs))
        return (self.compiler + [
            "-O2", "-std=c++%d" % self.std, "-shared", "-fPIC",
            "-fvisibility=hidden", "-DNDEBUG",
            "-D_GLIBCXX_USE_CXX11_ABI=%d" % self.abi,
            "-isystem", self.include,
            "-isystem", os.path.join(self.include, "torch", "csrc", "api",
                                     "include"),
            "-I", self.src_dir,
            os.path.join(self.src_dir, SOURCE_NAME), "-o", out]
            + self.libs + ["-Wl,-rpath," + d for d in lib_dirs] + ["-ldl"])

    def shown_compiler(self):
        return "%s (%s)" % (" ".join(self.compiler), self.compiler_version)


def _remove_orphans(folder, timeout):
    """Temporary files of builds killed mid-way (older than any live build
    can be: twice the time limit)."""
    limit = time.time() - 2 * timeout - 60
    try:
        for name in os.listdir(folder):
            if name.startswith((".build-", ".meta-")):
                path = os.path.join(folder, name)
                if os.stat(path).st_mtime < limit:
                    os.unlink(path)
    except OSError:
        pass


def _compile(plan, entry, folder):
    """Builds into a temporary file and renames it into place; returns the
    build's seconds. The metadata file is written last."""
    fd, tmp = tempfile.mkstemp(prefix=".build-", suffix=".so", dir=folder)
    os.close(fd)
    t0 = time.monotonic()
    try:
        rc, out = _Child.run(plan.argv(tmp), plan.timeout, cwd=folder)
        if rc != 0:
            errors = [l for l in out.splitlines() if "error" in l.lower()]
            last = (errors or out.strip().splitlines() or ["no output"])[0]
            raise _Stop("failed", "%s exited with %d: %s"
                        % (os.path.basename(plan.compiler[0]), rc,
                           last.strip()[:300]))
        seconds = time.monotonic() - t0
        os.rename(tmp, entry.so)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    why = _dlopen_check(entry.so, plan.version)
    if why is not None:
        entry.remove()
        raise _Stop("failed", "the built library %s" % why)
    meta = {"sha256": _sha256_file(entry.so), "build_seconds": seconds,
            "compiler": plan.shown_compiler(), "torch_version": plan.version,
            "std": plan.std, "cxx_abi": plan.abi}
    fd, tmp = tempfile.mkstemp(prefix=".meta-", dir=folder)
    with os.fdopen(fd, "w") as f:
        json.dump(meta, f)
    os.rename(tmp, entry.meta)
    return meta


def _load_or_build(plan, folder, info):
    """Returns the entry's path; fills info's outcome and build_seconds."""
    entry = _Entry(folder, plan.key)
    with _thread_lock:
        meta, why = entry.read(plan.version)
        if meta is not None:
            info.update(outcome="cached", build_seconds=meta["build_seconds"])
            return entry.so
        fd = os.open(entry.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            waited = _acquire(fd, entry.lock,
                              time.monotonic() + plan.timeout + 30.0)
            meta, why = entry.read(plan.version)
            if meta is not None:
                info.update(outcome="waited" if waited > 0.05 else "cached",
                            build_seconds=meta["build_seconds"])
                return entry.so
            if why is not None:
                entry.remove()
                info["rebuilt_because"] = why
            _remove_orphans(folder, plan.timeout)
            meta = _compile(plan, entry, folder)
            info.update(outcome="built", build_seconds=meta["build_seconds"])
            return entry.so
        finally:
            os.close(fd)  # releases the lock


def _line(info, failure_note):
    o = info["outcome"]
    if o == "built":
        extra = (" (the cached one was rebuilt: %s)" % info["rebuilt_because"]
                 if "rebuilt_because" in info else "")
        return ("built the torch shim for torch %s (C++%d, cxx11 ABI %d) with "
                "%s in %.1f s: %s%s" % (info["torch_version"], info["std"],
                                        info["cxx_abi"], info["compiler"],
                                        info["build_seconds"], info["path"],
                                        extra))
    if o in ("cached", "waited"):
        how = ("from the cache" if o == "cached" else
               "built by another process (waited %.1f s)" % info["seconds"])
        return ("torch shim for torch %s %s: %s (built with %s in %.1f s)"
                % (info["torch_version"], how, info["path"], info["compiler"],
                   info["build_seconds"]))
    line = "torch shim not built: %s" % info["reason"]
    return line + ("; " + failure_note if failure_note else "")


def build_or_load(torch_module, probe_dir, log, torch_version=None, env=None,
                  failure_note="capturing without operator events"):
    """The path of a shim for this torch (cached or built now), or None.

    Blocks up to the time limit (plus the wait for another process's build):
    call it from a background thread (start()). Logs one line through
    `log`; `failure_note` ends the line when no shim results. Returns
    (path or None, info)."""
    t0 = time.monotonic()
    env = os.environ if env is None else env
    version = torch_version or str(getattr(torch_module, "__version__", ""))
    info = {"outcome": "error", "reason": "", "torch_version": version,
            "compiler": "", "std": 0, "cxx_abi": -1, "cache_dir": "",
            "path": "", "key": "", "build_seconds": 0.0}
    path = None
    try:
        why = precheck(torch_module, probe_dir, version, env)
        if why is not None:
            raise _Stop("disabled" if disabled(env) else "unavailable", why)
        plan = _Plan(torch_module, probe_dir, version, env)
        info.update(compiler=plan.shown_compiler(), std=plan.std,
                    cxx_abi=plan.abi, key=plan.key)
        folder, skipped = cache_dir(env)
        if folder is None:
            raise _Stop("unavailable", "no writable cache folder (%s)"
                        % "; ".join(skipped))
        info["cache_dir"] = folder
        path = _load_or_build(plan, folder, info)
        info["path"] = path
    except _Stop as s:
        info.update(outcome=s.outcome, reason=s.reason)
    except Exception as e:  # the host must never see it
        info.update(outcome="error", reason="%s: %s" % (type(e).__name__, e))
    info["seconds"] = time.monotonic() - t0
    info["line"] = _line(info, failure_note)
    try:
        log(info["line"])
    except Exception:
        pass
    return (path if info["outcome"] in ("built", "cached", "waited") else
            None), info


def start(torch_module, probe_dir, log, on_done, torch_version=None,
          failure_note="capturing without operator events"):
    """Runs build_or_load() on a daemon thread ("vllm-profiler-shim") at
    nice 19 and then calls on_done(path_or_None, info) on that thread.
    Returns the started thread; exceptions from on_done are swallowed."""

    def run():
        try:
            # Linux: the nice value is per thread; this one only.
            os.setpriority(os.PRIO_PROCESS, 0, 19)
        except (OSError, AttributeError):
            pass
        path, info = build_or_load(torch_module, probe_dir, log,
                                   torch_version=torch_version,
                                   failure_note=failure_note)
        try:
            on_done(path, info)
        except Exception:
            pass

    t = threading.Thread(target=run, name="vllm-profiler-shim", daemon=True)
    t.start()
    return t
