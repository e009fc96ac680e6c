"""layout: pickles read back into objects laid out as new ones, with the state pickle gives them."""
from __future__ import annotations

import pickle

from river import stats

from app.learning import layout, model_factory
from app.learning.learner import OnlineLearner
from tests.learning.test_pipeline import stream


class Temperature:
    """A class whose ``celsius`` state is a property: pickle writes it into the instance's dict."""

    def __init__(self) -> None:
        self.kelvin = 273.15
        self.__dict__["celsius"] = "stored"

    @property
    def celsius(self):
        return self.kelvin - 273.15

    @celsius.setter
    def celsius(self, value):
        raise AssertionError("a property's setter is not how state is restored")


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self) -> None:
        self.a, self.b = 1, [2]


class Restoring:
    def __init__(self) -> None:
        self.value = 1

    def __setstate__(self, state) -> None:
        self.__dict__.update(state, restored=True)


def read_back(obj):
    return pickle.loads(layout.dumps(obj))


def trained(n: int = 600):
    model = model_factory(kind="arf+lr", trees=3)()
    for x, y in stream(n):
        model.predict_proba_one(x)
        model.learn_one(x, y)
    return model


class Node:
    def __init__(self, parent=None) -> None:
        self.parent, self.children = parent, []


def test_references_shared_and_circular_are_kept():
    mean = stats.Mean()
    for value in (1.0, 2.0, 6.0):
        mean.update(value)
    root = Node()
    root.children.append(Node(root))
    state = pickle.loads(layout.dumps({"mean": mean, "shared": [mean, mean], "n": 3, "tree": root}))
    assert state["mean"].get() == 3.0 and state["n"] == 3
    assert state["shared"][0] is state["shared"][1] is state["mean"]
    assert state["tree"].children[0].parent is state["tree"]
    assert not layout.has_instance_dict(state["tree"]) and not layout.has_instance_dict(state["tree"].children[0])


def test_a_model_read_back_is_laid_out_as_a_new_one_with_pickles_state():
    model = trained()
    new = len(layout.instances_with_dict(model, "river"))
    data = layout.dumps(model)
    assert len(layout.instances_with_dict(model, "river")) > new + 10  # pickling made dicts
    assert len(layout.instances_with_dict(pickle.loads(pickle.dumps(model)), "river")) > new + 10  # so does pickle
    read_back = pickle.loads(data)
    assert len(layout.instances_with_dict(read_back, "river")) <= new
    assert pickle.dumps(read_back) == pickle.dumps(pickle.loads(pickle.dumps(model)))  # the same state


def test_a_model_read_back_predicts_and_learns_as_the_original():
    model = trained()
    copy = read_back(model)
    for x, y in stream(400, seed=7):
        assert copy.predict_proba_one(x) == model.predict_proba_one(x)
        model.learn_one(x, y)
        copy.learn_one(x, y)


def test_state_a_class_restores_itself_or_a_descriptor_owns_is_restored_as_pickle_does():
    temperature = read_back(Temperature())
    assert temperature.__dict__["celsius"] == "stored" and temperature.kelvin == 273.15
    slotted = read_back(Slotted())
    assert (slotted.a, slotted.b) == (1, [2])
    assert read_back(Restoring()).__dict__ == {"value": 1, "restored": True}


def test_a_learner_goes_on_from_its_checkpoint_in_the_layout_of_new_objects():
    live = OnlineLearner(model_factory(kind="arf+lr", trees=3))
    for x, y in stream(600):
        live.learn(x, y)
    new = len(layout.instances_with_dict(live.model, "river"))
    before = live.model
    live.to_checkpoint()
    assert live.model is not before
    assert len(layout.instances_with_dict(live.model, "river")) <= new
    restored = OnlineLearner.from_checkpoint(live.to_checkpoint())
    assert len(layout.instances_with_dict(restored.model, "river")) <= new
