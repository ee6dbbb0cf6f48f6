"""Exercises and solutions (sphinx-exercise) as the lessons use them.

The lessons write their exercises in sphinx-exercise's gated syntax (``exercise-start`` ...
``exercise-end``, ``solution-start`` ... ``solution-end``), so that a solution can hold code
cells. On top of sphinx-exercise, this module

* numbers the exercises of a lesson "Exercise N.k", N the lesson's number (the two digits
  that start its file name) and k the exercise's place in it, without numbering the lessons'
  sections or figures (and so that an unchanged build rewrites no page);
* keeps the exercises' labels untitled, so that a ``{ref}`` to one reads "Exercise N.k" on the
  page and in the reader's notebook;
* renders a solution with the ``dropdown`` class as a native ``<details>`` element, collapsed
  until opened (no script; a printout can open it), whose summary says "Solution to Exercise
  N.k" in plain text (a link inside the summary would be a control inside a control);
* builds the edition without solutions when ``bn_solutions`` is false (``make html
  SOLUTIONS=0``): every solution, with the prose and the code cells between its
  ``solution-start`` and ``solution-end``, is left out of the pages. sphinx-exercise's own
  ``hide_solutions`` cannot do that for the gated syntax: it drops the ``solution-start``
  marker and leaves the solution's content on the page.
"""

from __future__ import annotations

import re
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.transforms import SphinxTransform
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.writers.html5 import HTML5Translator
from sphinx_exercise.nodes import (
    depart_solution_node,
    exercise_enumerable_node,
    exercise_node,
    solution_node,
    visit_solution_node,
)

#: A lesson's document name; its number is the group.
LESSON = re.compile(r"lessons/(\d+)_")
#: The ids sphinx-exercise gives the body of every exercise and solution (the same on every
#: block, so a page with two exercises would repeat them).
CONTENT_IDS = ("exercise-content", "solution-content")


class solution_summary(nodes.TextElement):
    """The always visible line of a collapsed solution."""


class SolutionBodies(SphinxTransform):
    """Give the bodies of exercises and solutions a class instead of a repeated id, and leave
    the solutions out of the edition without them.

    Runs after sphinx-exercise has gathered the content of the gated directives (priority 10).
    """

    default_priority = 11

    def apply(self, **kwargs: Any) -> None:
        for block in list(self.document.findall(solution_node)):
            if not self.config.bn_solutions:
                block.parent.remove(block)
        for block in self.document.findall(
            lambda n: isinstance(n, exercise_node | exercise_enumerable_node | solution_node)
        ):
            for child in block.children:
                if isinstance(child, nodes.section) and set(child["ids"]) & set(CONTENT_IDS):
                    body = nodes.container()
                    body.extend(child.children)
                    child.replace_self(body)  # which hands the section's ids on to the body
                    body["classes"], body["ids"] = body["ids"], []


class CollapsedSolutions(SphinxPostTransform):
    """Turn the title of a ``dropdown`` solution into its summary, links made plain text.

    Runs after sphinx-exercise has resolved the solutions' titles (priority 21, 22).
    """

    default_priority = 30
    formats = ("html",)

    def run(self, **kwargs: Any) -> None:
        for block in self.document.findall(solution_node):
            title = block.children[0] if block.children else None
            if "dropdown" in block["classes"] and isinstance(title, nodes.title):
                for reference in list(title.findall(nodes.reference)):
                    reference.replace_self(reference.children)
                summary = solution_summary("", "", *title.children, classes=["admonition-title"])
                title.replace_self(summary)


def number_by_lesson(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """Renumber each lesson's exercises (N, 1), (N, 2), ... after Sphinx has numbered all
    enumerable nodes; the other numbers (figures, equations) stay as Sphinx gave them.

    Without a numbered toctree Sphinx numbers exercises one after another across the site, in
    document order, so their order within a lesson is the order of those numbers. Those are
    kept (``env.bn_sequential_exercises``) for :func:`restore_sequential_numbers`.
    """
    sequential = {}
    for docname, fignumbers in env.toc_fignumbers.items():
        lesson = LESSON.match(docname)
        exercises = fignumbers.get("exercise")
        if lesson and exercises:
            sequential[docname] = dict(exercises)
            ordered = sorted(exercises, key=exercises.__getitem__)
            number = int(lesson.group(1))
            fignumbers["exercise"] = {key: (number, k) for k, key in enumerate(ordered, 1)}
    env.bn_sequential_exercises = sequential  # type: ignore[attr-defined]
    return []


def restore_sequential_numbers(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """Before Sphinx numbers the enumerable nodes again, put back the numbers it gave last
    time: it rewrites every page whose numbers changed, and would otherwise rewrite every
    lesson on every build (sphinx-codeautolink's links are lost on a page written again
    without being read again)."""
    for docname, exercises in getattr(env, "bn_sequential_exercises", {}).items():
        if "exercise" in env.toc_fignumbers.get(docname, {}):
            env.toc_fignumbers[docname]["exercise"] = exercises
    return []


def untitled_labels(app: Sphinx, doctree: nodes.document) -> None:
    """Keep an exercise's label out of the titled labels: its only title is "Exercise", which
    is what the reader's notebook (:mod:`bnsite.markdown`) would show for a ``{ref}`` to it;
    as an untitled label it reads "Exercise N.k" there, as on the page (sphinx-exercise turns
    the page's ``{ref}`` into a ``{numref}``, which needs no title)."""
    labels = app.env.domains.standard_domain.labels
    for node in doctree.findall(exercise_enumerable_node):
        for name in node["names"]:
            labels.pop(name, None)


def visit_solution(self: HTML5Translator, node: nodes.Element) -> None:
    if isinstance(node.children[0], solution_summary):
        self.body.append(self.starttag(node, "details", CLASS="admonition"))
    else:
        visit_solution_node(self, node)


def depart_solution(self: HTML5Translator, node: nodes.Element) -> None:
    if isinstance(node.children[0], solution_summary):
        self.body.append("</details>\n")
    else:
        depart_solution_node(self, node)


def visit_summary(self: HTML5Translator, node: nodes.Element) -> None:
    self.body.append(self.starttag(node, "summary"))


def depart_summary(self: HTML5Translator, node: nodes.Element) -> None:
    self.body.append("</summary>\n")


def setup(app: Sphinx) -> None:
    app.setup_extension("sphinx_exercise")
    app.add_config_value("bn_solutions", True, "env", types=[bool])
    app.add_transform(SolutionBodies)
    app.add_post_transform(CollapsedSolutions)
    app.connect("doctree-read", untitled_labels, priority=600)  # after sphinx-exercise's
    app.connect("env-get-updated", restore_sequential_numbers, priority=100)
    app.connect("env-get-updated", number_by_lesson, priority=900)  # the toctree's: 500
    html = (visit_solution, depart_solution)
    app.add_node(solution_node, override=True, html=html, singlehtml=html)
    app.add_node(solution_summary, html=(visit_summary, depart_summary))
