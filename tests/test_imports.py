"""Imports without side effects; process-wide settings only through launch.runtime.

Every check runs in a fresh interpreter: the pytest process has long imported TensorFlow.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import pytest

from tfgap.launch import cli
from tfgap.launch import runtime

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Installed before the imports under test: records environment writes and new processes, each
# with the module whose code made the call (the first frame outside os.py / subprocess.py).
_HOOK = textwrap.dedent("""
    import json, os, sys
    EVENTS = []
    _WATCHED = {"os.putenv", "os.unsetenv", "subprocess.Popen", "os.system", "os.posix_spawn",
                "os.fork", "os.exec", "os.spawn"}
    def _writer():
      frame = sys._getframe(2)
      while frame is not None and frame.f_code.co_filename.endswith(
          ("os.py", "subprocess.py", "<frozen os>")):
        frame = frame.f_back
      return frame.f_globals.get("__name__", "?") if frame is not None else "?"
    def _hook(event, args):
      if event in _WATCHED:
        EVENTS.append([event, _writer(), str(args[0])[:80]])
    sys.addaudithook(_hook)
    BEFORE = dict(os.environ)
    """)

_REPORT = textwrap.dedent("""
    after = dict(os.environ)
    changed = sorted(k for k in set(BEFORE) | set(after) if BEFORE.get(k) != after.get(k))
    print(json.dumps({"events": EVENTS, "changed": changed,
                      "tensorflow": "tensorflow" in sys.modules,
                      "tf_agents": "tf_agents" in sys.modules,
                      "dm_control": "dm_control._render" in sys.modules}))
    """)


def _clean_env(**extra):
  env = {k: v for k, v in os.environ.items()
         if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM", "TF_ENABLE_ONEDNN_OPTS",
                      "TF_CPP_MIN_LOG_LEVEL")}
  env.update(extra)
  return env


def _run(code, env=None, timeout=300):
  result = subprocess.run([sys.executable, "-c", code], env=env or _clean_env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


def _import_and_report(statement, env=None):
  return _run(_HOOK + statement + "\n" + _REPORT, env)


# OpenCV's loader (cv2/__init__.py) prepends its library folder to LD_LIBRARY_PATH for child
# processes when it is imported, and tfgap.replay imports cv2 for fast stacking: cv2's write, made
# whatever imports cv2. (numpy sets and unsets two OpenBLAS variables while it loads.)
_THIRD_PARTY_CHANGES = {"tfgap.replay": {"LD_LIBRARY_PATH"}}


@pytest.mark.parametrize("module", ["tfgap", "tfgap.replay", "tfgap.envs", "tfgap.checks",
                                    "tfgap.launch", "tfgap.launch.runtime", "tfgap.launch.cli"])
def test_light_imports_load_no_tensorflow_and_change_nothing(module):
  out = _import_and_report(f"import {module}")
  assert not out["tensorflow"] and not out["tf_agents"] and not out["dm_control"]
  assert [e for e in out["events"] if e[1].startswith("tfgap")] == [], out["events"]
  assert [e for e in out["events"] if e[0] not in ("os.putenv", "os.unsetenv")] == []
  assert set(out["changed"]) <= _THIRD_PARTY_CHANGES.get(module, set()), out["changed"]
  if module == "tfgap.replay":  # If cv2 stops writing, the allowance above can go.
    assert all(e[1] == "cv2" for e in out["events"] if e[2] == "b'LD_LIBRARY_PATH'")


def test_python_c_import_tfgap_replay_has_no_tensorflow():
  # The issue's own check, verbatim: a numpy-only replay buffer usable without TensorFlow.
  result = subprocess.run(
      [sys.executable, "-c", "import sys, tfgap.replay; assert 'tensorflow' not in sys.modules; "
       "b = tfgap.replay.ReplayBuffer(8, (2, 2, 1), stack_size=2); print('ok')"],
      env=_clean_env(), cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_no_tfgap_module_writes_environment_or_starts_processes_at_import():
  # Every module, the TensorFlow ones too. Third-party imports may do what they like (importing
  # tf_agents loads dm_control, which sets PYOPENGL_PLATFORM); tfgap code itself must do neither.
  code = textwrap.dedent("""
      import importlib, pkgutil
      import tfgap
      for info in pkgutil.walk_packages(tfgap.__path__, "tfgap."):
        importlib.import_module(info.name)
      EVENTS[:] = [e for e in EVENTS if e[1].startswith("tfgap")]
      """)
  out = _import_and_report(code)
  assert out["tensorflow"]  # The walk did reach the TensorFlow modules.
  assert out["events"] == [], out["events"]
  assert "TF_ENABLE_ONEDNN_OPTS" not in out["changed"] and "MUJOCO_GL" not in out["changed"]


def test_prepare_process_sets_defaults_before_tensorflow_and_checks_stack():
  code = textwrap.dedent("""
      from tfgap.launch import runtime
      applied = runtime.prepare_process()
      from tensorflow.python.util import _pywrap_util_port
      print(json.dumps({"applied": applied, "onednn": _pywrap_util_port.IsMklEnabled(),
                        "env": [os.environ.get(k) for k in sorted(runtime.TF_DEFAULTS)],
                        "again": runtime.prepare_process()}))
      """)
  out = _run("import json, os\n" + code)
  assert out["applied"] == {"TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
  assert out["env"] == ["3", "1"]
  assert out["onednn"] is True  # TensorFlow saw the default: it was set before its import.
  assert out["again"] == {}  # Idempotent, and no warning though TensorFlow is loaded now.


def test_prepare_process_respects_the_users_values():
  code = textwrap.dedent("""
      import json, os, warnings
      warnings.simplefilter("error")
      from tfgap.launch import runtime
      applied = runtime.prepare_process()
      from tensorflow.python.util import _pywrap_util_port
      print(json.dumps({"applied": applied, "onednn": _pywrap_util_port.IsMklEnabled(),
                        "env": [os.environ.get(k) for k in sorted(runtime.TF_DEFAULTS)]}))
      """)
  out = _run(code, _clean_env(TF_ENABLE_ONEDNN_OPTS="0", TF_CPP_MIN_LOG_LEVEL="2"))
  assert out == {"applied": {}, "onednn": False, "env": ["2", "0"]}


def test_prepare_process_after_tensorflow_warns_and_sets_nothing():
  code = textwrap.dedent("""
      import json, os, warnings
      import tensorflow
      from tfgap.launch import runtime
      with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        applied = runtime.prepare_process(check_stack=False)
      print(json.dumps({"applied": applied, "warnings": [str(w.message) for w in caught],
                        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}))
      """)
  out = _run(code)
  assert out["applied"] == {} and out["onednn"] is None
  assert len(out["warnings"]) == 1
  assert "after TensorFlow was imported" in out["warnings"][0]
  assert "TF_ENABLE_ONEDNN_OPTS=1" in out["warnings"][0]


@pytest.mark.parametrize("user_choice", [None, "osmesa"])
def test_prepare_process_chooses_the_renderer_before_tf_agents(user_choice):
  code = textwrap.dedent("""
      import json, os, sys
      from tfgap.launch import runtime
      runtime.prepare_process(renderer=True, check_stack=False)
      print(json.dumps({"gl": os.environ.get("MUJOCO_GL"),
                        "loaded": "dm_control._render" in sys.modules,
                        "tensorflow": "tensorflow" in sys.modules}))
      """)
  env = _clean_env(**({"MUJOCO_GL": user_choice} if user_choice else {}))
  out = _run(code, env)
  # The probe ran in a subprocess: dm_control is still free to read the choice.
  assert not out["loaded"] and not out["tensorflow"]
  if user_choice:
    assert out["gl"] == user_choice
  else:
    assert out["gl"] in ("egl", "osmesa")


def test_prepare_process_rejects_non_bool_arguments():
  # Checked before anything is changed, so this runs in the test process.
  with pytest.raises(ValueError, match="renderer='yes' is not accepted"):
    runtime.prepare_process(renderer="yes")
  with pytest.raises(ValueError, match="check_stack=1 is not accepted"):
    runtime.prepare_process(check_stack=1)


def test_prepare_process_raises_on_an_unsupported_stack(monkeypatch):
  from tfgap import compat
  monkeypatch.setattr(runtime, "_defaults_done", True)  # Leave this process's environment alone.
  monkeypatch.setitem(compat.SUPPORTED, "numpy", "9.9")
  with pytest.raises(compat.UnsupportedStackError, match=r"numpy .* \(supported: 9\.9\.x\)"):
    runtime.prepare_process()


def test_console_scripts_prepare_the_process_before_importing_the_tool(tmp_path):
  # A stand-in tool module that records what it finds when it is imported.
  (tmp_path / "fake_tool.py").write_text(textwrap.dedent("""
      import os, sys
      SEEN = {"tensorflow": "tensorflow" in sys.modules,
              "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
              "gl": os.environ.get("MUJOCO_GL")}
      def run():
        return SEEN
      """))
  code = ("import json\nfrom tfgap.launch import cli\n"
          "print(json.dumps(cli._run('fake_tool', renderer=True)))")
  out = _run(code, _clean_env(PYTHONPATH=str(tmp_path), MUJOCO_GL="osmesa"))
  # The stack check imported TensorFlow after the defaults were set, before the tool's import.
  assert out == {"tensorflow": True, "onednn": "1", "gl": "osmesa"}


@pytest.mark.parametrize("tool", ["train", "describe", "report"])
def test_python_m_tools_prepare_the_process_before_tensorflow(tool):
  # TF_CPP_MIN_LOG_LEVEL unset: TensorFlow's C++ start-up lines (oneDNN, CUDA) appear unless the
  # guard set the default before TensorFlow was imported.
  result = subprocess.run([sys.executable, "-m", f"tfgap.launch.{tool}", "--help"],
                          env=_clean_env(MUJOCO_GL="osmesa"), cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  assert result.stdout or result.stderr  # It ran and printed its help.
  chatter = re.findall(r".*: [IWEF] (?:tensorflow|external)/.*", result.stderr)
  assert chatter == [], chatter[:3]


def test_setup_console_scripts_point_at_the_cli_shims():
  text = (ROOT / "setup.py").read_text()
  scripts = dict(re.findall(r'"(tfgap-\w+)=([\w.]+:\w+)"', text))
  assert set(scripts) == {"tfgap-train", "tfgap-describe", "tfgap-report", "tfgap-evaluate",
                          "tfgap-study"}
  for name, target in scripts.items():
    module, function = target.split(":")
    assert module == "tfgap.launch.cli", name
    assert callable(getattr(cli, function)), name
    assert name == "tfgap-" + function

