"""The machine a benchmark ran on, printed at its top: compare figures only within one run.

    from machine import describe_machine   # benchmarks/ is the script's folder
    print(describe_machine())
"""

import os
import platform

FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_model_and_flags():
  """(CPU model name, {flag: present}) from /proc/cpuinfo (Linux); ("unknown", {}) elsewhere."""
  model, flags = platform.processor() or "unknown", set()
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model in ("unknown", "", platform.processor()):
          model = value.strip()
        elif key.strip() == "flags" and not flags:
          flags = set(value.split())
  except OSError:
    pass
  return model, {flag: flag in flags for flag in FLAGS}


def describe_machine():
  """One line: CPU model, the flags that matter for TF on CPU, cores, load, oneDNN setting."""
  model, flags = cpu_model_and_flags()
  present = ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in flags.items())
  try:
    load = "%.2f" % os.getloadavg()[0]
  except OSError:
    load = "n/a"
  onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset (TensorFlow's default)")
  return (f"machine: {model}; {present}; {os.cpu_count()} CPUs; load {load}; "
          f"TF_ENABLE_ONEDNN_OPTS={onednn}")


if __name__ == "__main__":
  print(describe_machine())
