"""ansible.posix.json, with the message of every failed task's error.

A task with no_log: true has its result censored, message included, in
ansible.posix.json's report, while the default callback still shows the
error's message (an assertion's fail_msg, which names the variable to fix).
This callback adds that message to each failed result, under "error", as
the default callback shows it; the unit tests' preflight runs
(tests/unit/preflight_testlib.py) read it per host.
"""

DOCUMENTATION = r"""
name: preflight_json
type: stdout
short_description: ansible.posix.json with the message of every failed task's error
description:
  - The report of ansible.posix.json; each failed result also has the message the default callback shows
    for its error, under C(error).
options:
  json_indent:
    description: Number of spaces to indent the JSON output; 0 or less for none.
    default: 4
    type: integer
    env:
      - name: ANSIBLE_JSON_INDENT
  show_custom_stats:
    description: Show the custom stats (set_stats) in the report.
    default: false
    type: bool
    env:
      - name: ANSIBLE_SHOW_CUSTOM_STATS
"""

from ansible_collections.ansible.posix.plugins.callback.json import CallbackModule as JsonCallback


def _error_text(error):
    """The messages of a task's error, outermost first, as the default callback
    shows them ("Task failed: Action failed: <fail_msg>"), without the source
    lines it also shows (they are the role's code, not what the run says)."""
    messages = []
    event = getattr(error, "event", None)  # ansible-core 2.19's ErrorSummary
    while event is not None:
        messages.append(str(event.msg))
        event = event.chain.event if getattr(event, "chain", None) else None
    if not messages:
        return str(error)
    return ": ".join([message.rstrip(".") for message in messages[:-1]] + messages[-1:])


class CallbackModule(JsonCallback):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "preflight_json"

    def _record_task_result(self, on_info, result, **kwargs):
        record = self._find_result_task(result._host, result._task)
        super()._record_task_result(on_info, result, **kwargs)
        error = getattr(result, "exception", None)
        if on_info.get("failed") and error is not None and not isinstance(error, str):
            record["hosts"][result._host.name]["error"] = _error_text(error)
