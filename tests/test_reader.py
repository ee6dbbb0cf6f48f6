"""The reader's notebook (docs/_ext/bnsite/reader.py), on small handmade notebooks.

Each expected Markdown is written out by hand from what the page shows; the glue data is in
myst-nb's format (``display_data`` outputs whose metadata names the key).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from bnsite import wheel
from bnsite.reader import (
    GLUE_PREFIX,
    ReaderError,
    Reference,
    Site,
    Target,
    attachment_bytes,
    format_text,
    place_claims,
    read_bibliography,
    reader_notebook,
)
from docutils import nodes

BASE = "https://example.org/en/latest/"
PNG = b"\x89PNG\r\n\x1a\nfake image bytes"

SITE = Site(
    baseurl=BASE,
    docname="lessons/01_x",
    objects={
        "bnlessons.mlp.SigmoidMLP": "docs/api.html#bnlessons.mlp.SigmoidMLP",
        "bnlessons.training.train": "docs/api.html#bnlessons.training.train",
        "bnlessons.batchnorm": "docs/api.html#module-bnlessons.batchnorm",
    },
    labels={"sec-a": Target("lessons/02_y.html#sec-a", "A section")},
    numbers={
        "fig-a": Target("lessons/01_x.html#fig-a", "Fig. 1"),
        "tbl-a": Target("lessons/01_x.html#tbl-a", "Table 2"),
    },
    equations={"eq-a": Target("lessons/01_x.html#equation-eq-a", "3")},
    documents={"lessons/02_y": "2. Why", "docs/index": "Home"},
    bibliography={
        "ioffe": Reference("Ioffe and Szegedy", "2015", "Sergey Ioffe and Christian Szegedy. BN."),
        "yu": Reference("Yu", "2018", "Rose Yu. Notes."),
    },
)


def glued(key: str, data: dict[str, Any], claim: dict[str, Any] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"scrapbook": {"name": key, "mime_prefix": GLUE_PREFIX}}
    if claim is not None:
        metadata["bnlessons"] = {"claim": claim}
    return {"output_type": "display_data", "data": data, "metadata": metadata}


CLAIM = {
    "id": "err",
    "text": "4.8e-09",
    "statement": "agrees with finite differences",
    "check": "4.8e-09 < 1e-08",
    "holds": True,
    "values": {},
    "tolerance": "1e-08",
}
GLUE = {
    "n": glued("n", {"text/plain": "8000"}),
    "x": glued("x", {"text/plain": "0.050000000000000044"}),
    "s": glued("s", {"text/plain": "'-0.40, 2.15'"}),
    "err": glued("err", {"text/plain": "4.7942908704970755e-09"}, CLAIM),
    "fig": glued(
        "fig",
        {"text/plain": "<Figure>", "image/png": base64.b64encode(PNG).decode()},
    ),
    "tbl": glued(
        "tbl",
        {
            "text/plain": "<Markdown>",
            "text/markdown": ":::{table} Values, {glue:text}`n:,` of them.\n:name: tbl-a\n\n"
            "| a | b |\n| --- | --- |\n| 1 | {glue:text}`x:.2f` |\n:::\n",
        },
    ),
    "sym": glued("sym", {"text/plain": "Eq", "text/latex": r"$\displaystyle a = b$"}),
}


def markdown(source: str, glue: dict[str, Any] = GLUE, site: Site = SITE) -> list[str]:
    notebook = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": source}]}
    return [c["source"] for c in reader_notebook(notebook, glue, site)["cells"]]


def code(source: str, tags: list[str] | None = None, outputs: Any = ()) -> dict[str, Any]:
    metadata = {"tags": tags} if tags else {}
    return {
        "cell_type": "code",
        "metadata": metadata,
        "source": source,
        "outputs": list(outputs),
        "execution_count": 1,
    }


# ------------------------------------------------------------------ glued values


def test_glued_text_is_formatted_as_the_page_shows_it() -> None:
    text = "Split {glue:text}`n:,` ways, gap {glue:text}`x:.3f`, bands {glue:text}`s`."
    assert markdown(text) == ["Split 8,000 ways, gap 0.050, bands -0.40, 2.15."]


def test_format_text_follows_the_type_letter() -> None:
    assert format_text("3", ".1f") == "3.0"  # an int formatted as a float
    assert format_text("2.0", "d") == "2"
    assert format_text("0.25", ".0%") == "25%"
    assert format_text("'abc'", "s") == "abc"


def test_claim_shows_its_value_and_a_check_mark() -> None:
    assert markdown("at most {claim}`err` here") == ["at most 4.8e-09 ✓ here"]


def test_glued_value_that_is_no_claim_is_an_error() -> None:
    with pytest.raises(ReaderError, match="'n' is glued but is not a claim"):
        markdown("{claim}`n`")


def test_missing_glue_key_is_an_error_naming_it() -> None:
    with pytest.raises(ReaderError, match="nothing is glued as 'nope'"):
        markdown("{glue:text}`nope:.2f`")


def test_glued_figure_is_attached_with_its_numbered_caption() -> None:
    source = (
        "Before.\n\n```{glue:figure} fig\n:name: fig-a\n\nThe curve of\n"
        "{glue:text}`n:,` steps.\n```\n\nAfter."
    )
    notebook = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": source}]}
    cell = reader_notebook(notebook, GLUE, SITE)["cells"][0]
    assert cell["source"] == (
        "Before.\n\n![The curve of 8,000 steps.](attachment:fig.png)\n\n**Fig. 1.** "
        "The curve of 8,000 steps.\n\nAfter."
    )
    assert attachment_bytes({"cells": [cell]}) == {"fig.png": PNG}


def test_glued_markdown_table_becomes_a_numbered_markdown_table() -> None:
    assert markdown("```{glue:md} tbl\n:format: myst\n```") == [
        "**Table 2.** Values, 8,000 of them.\n\n| a | b |\n| --- | --- |\n| 1 | 0.05 |"
    ]


def test_glued_math_is_display_math_with_its_number() -> None:
    assert markdown("```{glue:math} sym\n:label: eq-a\n```") == [
        "$$\n\\displaystyle a = b \\tag{3}\n$$"
    ]
    assert markdown("inline {glue:math}`sym`") == ["inline $\\displaystyle a = b$"]


# ------------------------------------------------------------------ references


def test_api_roles_link_to_the_api_page() -> None:
    text = (
        "{class}`~bnlessons.mlp.SigmoidMLP`, {func}`~bnlessons.training.train`, "
        "{mod}`bnlessons.batchnorm`, {func}`the loop <bnlessons.training.train>`"
    )
    api = f"{BASE}docs/api.html"
    assert markdown(text) == [
        f"[`SigmoidMLP`]({api}#bnlessons.mlp.SigmoidMLP), "
        f"[`train()`]({api}#bnlessons.training.train), "
        f"[`bnlessons.batchnorm`]({api}#module-bnlessons.batchnorm), "
        f"[`the loop`]({api}#bnlessons.training.train)"
    ]


def test_unknown_api_name_is_an_error() -> None:
    with pytest.raises(ReaderError, match=r"no API entry 'bnlessons\.nope'"):
        markdown("{func}`bnlessons.nope`")


def test_document_label_figure_and_equation_references_are_links() -> None:
    text = (
        "{doc}`02_y`, {doc}`home </docs/index>`, {ref}`sec-a`, {numref}`fig-a`, "
        "{numref}`Figure %s <fig-a>`, {eq}`eq-a`"
    )
    assert markdown(text) == [
        f"[2. Why]({BASE}lessons/02_y.html), [home]({BASE}docs/index.html), "
        f"[A section]({BASE}lessons/02_y.html#sec-a), [Fig. 1]({BASE}lessons/01_x.html#fig-a), "
        f"[Figure 1]({BASE}lessons/01_x.html#fig-a), "
        f"[(3)]({BASE}lessons/01_x.html#equation-eq-a)"
    ]


def test_citations_are_author_year_with_references_at_the_end() -> None:
    cells = markdown("As {cite:t}`ioffe` say {cite:p}`yu,ioffe`.")
    assert cells == [
        "As Ioffe and Szegedy (2015) say (Yu, 2018; Ioffe and Szegedy, 2015).",
        "## References\n\n- Sergey Ioffe and Christian Szegedy. BN.\n\n- Rose Yu. Notes.",
    ]


def test_bibliography_is_read_from_bibtex(tmp_path: Path) -> None:
    bib = tmp_path / "refs.bib"
    bib.write_text(
        "@article{a, author = {Ioffe, Sergey and Szegedy, Christian}, title = {Batch "
        "normalization}, journal = {ICML}, year = {2015}}\n"
        "@misc{b, author = {Santurkar, S. and Tsipras, D. and Ilyas, A.}, title = {How}, "
        "year = {2018}}\n",
        encoding="utf-8",
    )
    refs = read_bibliography(bib)
    assert (refs["a"].authors, refs["a"].year) == ("Ioffe and Szegedy", "2015")
    assert refs["b"].authors == "Santurkar et al."
    assert "Batch normalization" in refs["a"].entry and "2015" in refs["a"].entry


def test_code_spans_and_math_keep_their_text() -> None:
    text = "Write `{glue:text}` or $\\{x\\}$ then {glue:text}`n`."
    assert markdown(text) == ["Write `{glue:text}` or $\\{x\\}$ then 8000."]


def test_inline_math_over_two_lines_keeps_the_roles_after_it() -> None:
    text = "so $a\n= b$ and {glue:text}`n:,` then $c$."
    assert markdown(text) == ["so $a\n= b$ and 8,000 then $c$."]


def test_unknown_role_and_directive_are_errors_naming_them() -> None:
    with pytest.raises(ReaderError, match=r"role \{weird\}"):
        markdown("{weird}`x`")
    with pytest.raises(ReaderError, match=r"directive \{eval-rst\}"):
        markdown("```{eval-rst}\n.. x::\n```")


# ------------------------------------------------------------------ blocks


def test_admonition_is_a_quote_and_dropdown_a_details_element() -> None:
    source = (
        ":::{admonition} What the notes say\n:class: tip\n\nThey say {glue:text}`n`.\n:::\n\n"
        ":::{dropdown} Solution\nUse\n\n```python\nx = 1\n```\n:::"
    )
    assert markdown(source) == [
        "> **What the notes say**\n>\n> They say 8000.\n\n"
        "<details>\n<summary>Solution</summary>\n\nUse\n\n```python\nx = 1\n```\n\n</details>"
    ]


def test_admonition_paragraphs_continue_lazily_so_wrapped_math_stays_clean() -> None:
    source = ":::{note}\nSo $a\n= b$ holds.\n\n```python\nx = 1\n```\n:::"
    assert markdown(source) == [
        "> **Note**\n>\n> So $a\n= b$ holds.\n>\n> ```python\n> x = 1\n> ```"
    ]


def test_labels_comments_and_math_directives() -> None:
    source = "(sec-a)=\n% a comment\n## Title\n\n```{math}\n:label: eq-a\nx = 1\n```"
    assert markdown(source) == ["## Title\n\n$$\nx = 1 \\tag{3}\n$$"]


def test_exercise_and_gated_solution_with_a_code_cell() -> None:
    cells = [
        {
            "cell_type": "markdown",
            "metadata": {},
            "source": "```{exercise-start}\n:label: ex-1\n```\nCompute {glue:text}`n`.\n"
            "```{exercise-end}\n```\n```{solution-start} ex-1\n:class: dropdown\n```\nLike this:",
        },
        code("print(1)"),
        {"cell_type": "markdown", "metadata": {}, "source": "```{solution-end}\n```\nNext."},
    ]
    out = reader_notebook({"cells": cells}, GLUE, SITE)["cells"]
    assert out[0]["source"] == (
        "**Exercise 1.**\n\nCompute 8000.\n\n<details>\n<summary>Solution to Exercise 1"
        "</summary>\n\nLike this:\n\n</details>"
    )
    assert out[1]["metadata"]["jupyter"] == {"source_hidden": True, "outputs_hidden": True}
    assert out[2]["source"] == "Next."


def test_solution_text_after_its_code_cell_opens_its_own_details() -> None:
    site = Site(BASE, "lessons/01_x", numbers={"ex-1": Target("x.html#ex-1", "Exercise 4")})
    cells = [
        {
            "cell_type": "markdown",
            "metadata": {},
            "source": "```{exercise-start} Scale\n"
            ":label: ex-1\n```\nDo it.\n```{exercise-end}\n```\n```{solution-start} ex-1\n```",
        },
        code("x = 2"),
        {"cell_type": "markdown", "metadata": {}, "source": "So it is.\n```{solution-end}\n```"},
    ]
    out = reader_notebook({"cells": cells}, GLUE, site)["cells"]
    assert out[0]["source"] == (
        "**Exercise 4 (Scale).**\n\nDo it.\n\n<details>\n<summary>Solution to Exercise 4"
        "</summary>\n\n</details>"
    )
    assert out[2]["source"] == (
        "<details>\n<summary>Solution to Exercise 4 (continued)</summary>\n\nSo it is."
        "\n\n</details>"
    )


def test_edition_without_solutions_leaves_them_out_with_their_code() -> None:
    cells = [
        {
            "cell_type": "markdown",
            "metadata": {},
            "source": "```{exercise-start}\n:label: ex-1\n```\nDo it.\n```{exercise-end}\n```\n"
            "```{solution-start} ex-1\n```\nThe answer.",
        },
        code("answer = 42"),
        {
            "cell_type": "markdown",
            "metadata": {},
            "source": "Is 42.\n```{solution-end}\n```\nNext.",
        },
    ]
    out = reader_notebook({"cells": cells}, GLUE, SITE, solutions=False)["cells"]
    assert [c["source"] for c in out] == ["**Exercise 1.**\n\nDo it.", "Next."]


# ------------------------------------------------------------------ code cells


def test_code_cells_keep_hidden_cells_collapsed_and_claims_as_check_lines() -> None:
    glue_output = glued("err", {GLUE_PREFIX + "text/plain": "4.79e-09"}, CLAIM)
    stream = {"output_type": "stream", "name": "stdout", "text": "hi\n"}
    result = {
        "output_type": "execute_result",
        "data": {"text/plain": "3"},
        "metadata": {},
        "execution_count": 1,
    }
    cells = [
        code("from myst_nb import glue\n%matplotlib inline", ["remove-cell"]),
        code("claim('err', e, 'agrees', below=1e-8)\n1 + 2", ["hide-input"], [stream, result]),
        code("x = 1", ["hide-output"], [glue_output]),
    ]
    out = reader_notebook({"cells": cells}, GLUE, SITE)
    nbformat.validate(nbformat.from_dict(out))
    first, second, third = out["cells"]
    assert first["source"] == "from bnlessons.claims import glue\n%matplotlib inline"
    assert first["metadata"]["jupyter"] == {"source_hidden": True}
    line = "✓ err: agrees with finite differences (4.8e-09 < 1e-08)"
    assert [o.get("data", {}).get("text/plain") for o in second["outputs"]] == [None, line, "3"]
    assert second["outputs"][1]["metadata"]["bnlessons"]["claim"] == CLAIM
    assert third["outputs"] == [] and third["metadata"]["jupyter"] == {"outputs_hidden": True}


def test_claims_go_to_the_cells_that_make_them() -> None:
    sources = [
        "claim('a', x, 's', below=1)",
        "x = 1",
        "for k in keys:\n    claim(f'exact_{k}', v[k], 's', below=1)\nclaim('b', y, 's', above=0)",
        "claim(name, z, 's', holds=True)",
        "claim('c', z, 's', holds=True)",
    ]
    made = ["a", "exact_y1", "exact_y2", "b", "computed", "c", "helper"]
    assert place_claims(sources, made) == [
        ["a"],
        [],
        ["exact_y1", "exact_y2", "b"],
        ["computed"],
        ["c", "helper"],  # made by no call: after the claim before it
    ]


def test_a_notebook_that_would_import_myst_nb_or_sphinx_fails() -> None:
    for source in ("import myst_nb", "from myst_nb.ext.glue import glue", "import sphinx"):
        with pytest.raises(ReaderError, match="would import what its reader does not have"):
            reader_notebook({"cells": [code(source)]}, GLUE, SITE)


def test_notebook_metadata_keeps_only_the_kernel_and_language() -> None:
    notebook = {
        "metadata": {"kernelspec": {"name": "python3"}, "source_map": [1], "jupytext": {}},
        "cells": [{"cell_type": "markdown", "metadata": {}, "source": "# T"}, code("x = 1")],
    }
    out = reader_notebook(notebook, GLUE, SITE, preface="Run it.")
    assert out["metadata"] == {"kernelspec": {"name": "python3"}}
    assert [c["source"] for c in out["cells"]] == ["# T", "Run it.", "x = 1"]
    assert len({c["id"] for c in out["cells"]}) == 3
    json.dumps(out)  # plain JSON


# ------------------------------------------------------------------ the wheel


def test_notebook_preface_says_how_to_run_it() -> None:
    text = wheel.run_locally_markdown("lessons/01_x", "pkg-1.0-py3-none-any.whl", BASE)
    assert text.startswith(f"*The reader's notebook of [this lesson]({BASE}lessons/01_x.html).*")
    assert f"[pkg-1.0-py3-none-any.whl]({BASE}wheel/pkg-1.0-py3-none-any.whl)" in text
    assert "`pip install pkg-1.0-py3-none-any.whl jupyterlab`" in text
    assert "`jupyter lab 01_x.ipynb`" in text


def test_wheel_name_comes_from_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "pkg"\nversion = "1.2.3"\n')
    assert wheel.wheel_name(tmp_path) == "pkg-1.2.3-py3-none-any.whl"


def test_lesson_page_says_in_two_lines_how_to_run_it() -> None:
    box = wheel.run_locally("lessons/01_x", "pkg-1.0-py3-none-any.whl")
    first, second = box.children
    assert first.astext() == (
        "Run this lesson yourself: download its notebook (the download button, .ipynb) and "
        "the library, pkg-1.0-py3-none-any.whl; then"
    )
    assert second.astext() == (
        "pip install pkg-1.0-py3-none-any.whl jupyterlab and jupyter lab 01_x.ipynb "
        "(each claim prints ✓ when its check holds)."
    )
    (link,) = first.findall(nodes.reference)
    assert link["refuri"] == "../wheel/pkg-1.0-py3-none-any.whl"


# ------------------------------------------------------------------ the reader test's check


def _reader_test() -> Any:
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tools" / "reader_test.py"
    spec = importlib.util.spec_from_file_location("reader_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reader_test_compares_claims_as_printed() -> None:
    compare = _reader_test().compare
    site = [{"id": "a", "text": "0.25", "holds": True}, {"id": "b", "text": "3", "holds": True}]
    assert compare("l", site, [dict(c) for c in site]) == []
    run = [{"id": "a", "text": "0.26", "holds": True}, {"id": "c", "text": "1", "holds": True}]
    assert compare("l", site, run) == [
        "l: claim 'a' is '0.26' in the notebook, '0.25' on the site",
        "l: claim 'b' was not printed by the notebook",
        "l: claim 'c' is not on the site",
    ]


def test_docstring_examples_of_the_converter() -> None:
    """``make unit`` runs the docstring examples of src/ and tools/; these live in docs/_ext."""
    import doctest

    from bnsite import markdown, reader

    for module in (markdown, reader):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.attempted > 0 and result.failed == 0, module.__name__
