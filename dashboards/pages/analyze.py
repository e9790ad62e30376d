"""Train page: placeholder until the jobs layer lands."""

import panel as pn


def build(store, state):
    return pn.pane.Markdown("Training jobs are launched with `tdw sweep` (see the README).")
