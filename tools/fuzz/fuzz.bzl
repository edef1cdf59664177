"""vp_fuzz_test: a libFuzzer target plus a test that replays its corpus."""

def vp_fuzz_test(name, srcs, corpus, deps = [], **kwargs):
    """Defines `name` (a cc_test replaying `corpus`) and `name_fuzzer`.

    Args:
      name: the replay test's name, e.g. "trace_writer_fuzz".
      srcs: sources defining LLVMFuzzerTestOneInput.
      corpus: a folder in this package holding the checked-in corpus.
      deps: libraries the fuzz target needs.
      **kwargs: passed to both rules.

    `bazel test :name` replays every corpus file (any toolchain, asan too).
    `bazel run --config=fuzz :name_fuzzer -- $PWD/<pkg>/<corpus>` fuzzes with
    clang's libFuzzer.
    """
    native.cc_test(
        name = name,
        srcs = srcs,
        deps = deps + ["//tools/fuzz:replay_main"],
        data = native.glob([corpus + "/**"]),
        args = [native.package_name() + "/" + corpus],
        **kwargs
    )
    native.cc_binary(
        name = name + "_fuzzer",
        srcs = srcs,
        deps = deps,
        linkopts = ["-fsanitize=fuzzer"],
        tags = ["manual"],
        **kwargs
    )
