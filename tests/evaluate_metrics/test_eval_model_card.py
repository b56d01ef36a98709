"""evaluate_metrics.model_card: metric results -> EvalResult / model-index, checked by a ModelCard round trip."""

import math

import pytest
from huggingface_hub import EvalResult, ModelCard

from groundvts.evaluate_metrics.model_card import (
    BENCHMARKS,
    eval_results_from_metrics,
    model_card_data,
    model_index,
)

MR_RESULTS = {"R1@0.3": 71.5, "R1@0.5": 57.456, "R1@0.7": 34.2, "mIoU": 50.1, "num_unparsed": 4, "num_queries": 3720}


def test_benchmark_defaults_pick_the_headline_metrics():
    results = eval_results_from_metrics(MR_RESULTS, "charades_sta")
    assert [r.metric_type for r in results] == ["R1@0.3", "R1@0.5", "R1@0.7", "mIoU"]
    first = results[0]
    assert (first.dataset_name, first.dataset_type, first.dataset_split) == ("Charades-STA", "charades_sta", "test")
    assert (first.task_type, first.task_name) == ("video-text-to-text", "Video Temporal Grounding")
    assert results[1].metric_value == 57.46  # rounded to 2 decimals by default
    assert BENCHMARKS["activitynet_captions"].dataset_split == "val_2"


def test_explicit_arguments_override_the_benchmark():
    results = eval_results_from_metrics(
        {"HL-min-VeryGood-Hit1-lenient": 88.4},
        "qvhighlights",
        metrics={"HL-min-VeryGood-Hit1-lenient": "HIT@1 (GroundVTS tie-lenient)"},
        dataset_type="org/qvhighlights",
        dataset_split="test",
        source_name="GroundVTS paper, Tab. 2",
        source_url="https://arxiv.org/abs/2604.02093",
    )
    (result,) = results
    assert result.metric_name == "HIT@1 (GroundVTS tie-lenient)"
    assert (result.dataset_type, result.dataset_split, result.dataset_name) == ("org/qvhighlights", "test", "QVHighlights")
    assert result.source_name == "GroundVTS paper, Tab. 2"


def test_model_card_round_trip_keeps_every_result(load_metric):
    mr = load_metric("moment_retrieval").compute(predictions=[[2.0, 8.0], None], references=[[[0.0, 10.0]]] * 2)
    gqa = {"mIoU": 25.8, "mIoP": 37.4, "IoU@0.3": 30.0, "IoU@0.5": 20.0, "IoP@0.3": 40.0, "IoP@0.5": 30.0,
           "Acc@QA": 60.0, "Acc@GQA": 23.2}
    results = eval_results_from_metrics(mr, "charades_sta") + eval_results_from_metrics(gqa, "nextgqa")
    card = ModelCard.from_template(model_card_data("GroundVTS-Q", results, license="apache-2.0"))
    reloaded = ModelCard(card.content)
    assert reloaded.data.eval_results == results
    assert reloaded.data.model_name == "GroundVTS-Q"
    block = reloaded.data.to_dict()["model-index"]
    assert block == model_index("GroundVTS-Q", results)
    assert [len(entry["metrics"]) for entry in block[0]["results"]] == [4, 8]
    assert block[0]["results"][0]["metrics"][1] == {
        "type": "R1@0.5", "value": 50.0, "name": "R1@0.5", "config": "eval_auto"
    }


def test_custom_dataset_without_benchmark():
    results = eval_results_from_metrics(
        {"R1@0.5": 40.0}, metrics=["R1@0.5"], dataset_name="My set", dataset_type="me/set", task_type="video-text-to-text"
    )
    assert isinstance(results[0], EvalResult) and results[0].dataset_type == "me/set"


@pytest.mark.parametrize(
    ("results", "kwargs", "message"),
    [
        (MR_RESULTS, {"benchmark": "charades"}, "unknown benchmark 'charades'"),
        ({"R1@0.3": 1.0}, {"benchmark": "charades_sta"}, "metric 'R1@0.5' is not in the results"),
        ({**MR_RESULTS, "mIoU": math.nan}, {"benchmark": "charades_sta"}, "metric 'mIoU': value nan is not a finite number"),
        (MR_RESULTS, {"benchmark": "charades_sta", "metrics": ["num_unparsed", "text"]}, "metric 'text' is not in the results"),
        (MR_RESULTS, {"metrics": ["mIoU"]}, "dataset_name, dataset_type and task_type"),
        (MR_RESULTS, {"dataset_name": "x", "dataset_type": "y", "task_type": "z"}, "give metrics"),
    ],
)
def test_bad_requests_are_rejected(results, kwargs, message):
    with pytest.raises(ValueError, match=message):
        eval_results_from_metrics(results, **kwargs)


def test_model_name_is_required():
    with pytest.raises(ValueError, match="model_name"):
        model_index("", eval_results_from_metrics(MR_RESULTS, "charades_sta"))


def test_each_entry_states_the_convention_of_its_number():
    results = {**MR_RESULTS, "convention": "eval_auto"}
    assert {r.metric_config for r in eval_results_from_metrics(results, "charades_sta")} == {"eval_auto"}
    qvh = {"MR-full-R1@0.5": 53.94, "MR-full-mIoU": 49.21, "convention": "moment_detr",
           "key_conventions": {"MR-full-mIoU": "groundvts_eval_qvhighlights"}}
    entries = eval_results_from_metrics(qvh, "qvhighlights", metrics=["MR-full-R1@0.5", "MR-full-mIoU"])
    assert [r.metric_config for r in entries] == ["moment_detr", "groundvts_eval_qvhighlights"]
    given = eval_results_from_metrics(MR_RESULTS, "charades_sta", conventions="lighthouse")
    assert {r.metric_config for r in given} == {"lighthouse"}
    assert eval_results_from_metrics(MR_RESULTS, "charades_sta")[0].metric_config is None  # nothing stated
    index = model_index("m", eval_results_from_metrics(results, "charades_sta"))
    assert index[0]["results"][0]["metrics"][0]["config"] == "eval_auto"


def test_metric_output_feeds_the_card_with_its_convention(load_metric):
    result = load_metric("moment_retrieval").compute(predictions=[[0.0, 5.0]], references=[[[0.0, 10.0]]])
    (entry, *_) = eval_results_from_metrics(result, "charades_sta")
    assert entry.metric_config == "eval_auto" and entry.metric_value == 100.0
