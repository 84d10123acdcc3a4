"""The playground's images mode in a real headless Chromium (Debian's chromium + chromium-driver, via Selenium).

On the built-in 8x8 digits: picks the conv net (the registry's "cnn"; the MLP where no conv net is registered),
plays until held-out accuracy reaches 95%, checks that the first-layer view changes while training, that clicking a held-out image changes the
activation view (and the gradients toggle too), that bad input is a message in the page while the server keeps
serving, and saves a screenshot (to $PLAYGROUND_IMAGES_SCREENSHOT too, when set: docs/images/playground-digits.png).
With $PLAYGROUND_CIFAR10 set to CIFAR-10 (a `--data` spec), the same page trains on it and saves
$PLAYGROUND_CIFAR10_SCREENSHOT.
"""

import os
import shutil
import time

import pytest
from playground_proc import browser, start_playground, state, stop_playground, wait_for  # noqa: F401 (fixture)

pytest.importorskip("uvicorn", reason="the playground needs the [playground] extra (uvicorn)")
pytest.importorskip("selenium.webdriver", reason="selenium is not installed (it is in the test extra)")
pytestmark = pytest.mark.skipif(
    shutil.which("chromedriver") is None or not (shutil.which("chromium") or shutil.which("chromium-browser")),
    reason="Chromium or chromedriver is not installed (apt-get install chromium chromium-driver)")


def canvas(d, testid):
    return d.execute_script(f"return document.querySelector('[data-testid=\"{testid}\"]').toDataURL()")


def control(d, testid):
    from selenium.webdriver.common.by import By

    return d.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def images_mode(d, dataset, model):
    from selenium.webdriver.support.ui import Select

    wait_for(d, lambda s: s["connected"] and s["frames"] >= 1, 30, "the first frame")
    Select(control(d, "mode")).select_by_value("images")
    wait_for(d, lambda s: s["mode"] == "images" and s["pending"] == 0, 60, "the images mode")
    Select(control(d, "image-dataset")).select_by_value(dataset)
    wait_for(d, lambda s: s["pending"] == 0, 120, f"the {dataset} images")
    models = [o.get_attribute("value") for o in Select(control(d, "image-model")).options]
    pick = "cnn" if "cnn" in models else model
    Select(control(d, "image-model")).select_by_value(pick)
    return wait_for(d, lambda s: s["pending"] == 0 and s["model"] == pick, 30, f"the {pick}")


def test_digits_train_live_with_filters_activations_and_held_out_strip(browser, tmp_path):  # noqa: F811
    from selenium.webdriver.support.ui import Select

    proc, url = start_playground()
    d = browser
    try:
        d.get(url)
        s = images_mode(d, "digits", "mlp")
        conv = s["model"] == "cnn"
        assert s["step"] == 0 and not s["running"] and s["error"] is None
        architecture = ("image-channels", "image-kernel", "image-pool") if conv else ("image-hidden",)
        for testid in ("mode", "image-dataset", "image-model", "image-lr", "image-lambda", "image-batch",
                       "image-optimizer", "image-activation", "gradients", "play", "step", "reset", *architecture):
            assert control(d, testid).is_displayed(), testid

        control(d, "play").click()
        wait_for(d, lambda s: s["running"] and d.execute_script("return window.playground.images().filters"), 30,
                 "the first filter view")
        first = canvas(d, "filters")
        start = time.monotonic()
        s = wait_for(d, lambda s: (s["test_accuracy"] or 0) >= 0.95, 60, "held-out accuracy >= 95% within 60 s")
        took = time.monotonic() - start
        assert s["running"] and s["step"] > 0 and s["loss"] is not None and s["train_accuracy"] is not None
        deadline = time.monotonic() + 10  # the first layer's weights, drawn as they learn (a few times a second)
        while canvas(d, "filters") == first and time.monotonic() < deadline:
            time.sleep(0.2)
        assert canvas(d, "filters") != first and state(d)["running"]
        assert s["throughput"]["forward_ms"] > 0 and s["throughput"]["backward_ms"] > 0

        control(d, "play").click()  # pause, so that only the click changes the activation view
        wait_for(d, lambda s: not s["running"], 10, "pause")
        time.sleep(0.3)
        before, inspected = canvas(d, "activations"), state(d)
        shown = d.execute_script("return window.playground.images().inspect")
        # the strip is ordered mistakes first, so which cell holds the example shown now varies: click another one
        cell = next(c for c in (control(d, f"heldout-{i}") for i in range(5, 10))
                    if int(c.get_attribute("data-index")) != shown)
        target = int(cell.get_attribute("data-index"))
        cell.click()
        wait_for(d, lambda s: d.execute_script("return window.playground.images().inspect") == target, 10,
                 "the clicked held-out image")
        time.sleep(0.3)  # its activations are drawn at the next animation frame
        after = canvas(d, "activations")
        assert after != before and state(d)["step"] == inspected["step"]
        control(d, "gradients").click()
        wait_for(d, lambda s: s["pending"] == 0, 10, "the gradients view")
        time.sleep(0.3)
        assert canvas(d, "activations") != after
        control(d, "gradients").click()
        wait_for(d, lambda s: s["pending"] == 0, 10, "the activations again")
        time.sleep(0.3)

        shot = tmp_path / "digits.png"
        assert d.save_screenshot(str(shot)) and shot.stat().st_size > 50_000
        if os.environ.get("PLAYGROUND_IMAGES_SCREENSHOT"):
            shutil.copyfile(shot, os.environ["PLAYGROUND_IMAGES_SCREENSHOT"])

        # bad input is a message in the page, and the server keeps serving
        layers = control(d, "image-channels" if conv else "image-hidden")
        layers.clear()
        layers.send_keys("8, 0\t")
        s = wait_for(d, lambda s: s["error"] is not None, 10, "the error for zero channels / a zero-width layer")
        assert s["error"] == ("params.channels[1]: a block has 1 to 64 channels, got 0" if conv
                              else "params.hidden_sizes[1]: a layer has 1 to 512 neurons, got 0")
        if conv:
            d.find_element("id", "error-close").click()
            layers.clear()
            layers.send_keys("8, 16\t")  # as it was: the refused list changed nothing
        Select(control(d, "image-lr")).select_by_value("10")  # with Adam: the loss soon exceeds 3 x its first
        control(d, "play").click()
        s = wait_for(d, lambda s: s["error"] is not None and "diverged" in s["error"], 30, "divergence")
        assert "lower the learning rate and press reset" in s["error"] and not s["running"]
        Select(control(d, "image-lr")).select_by_value("0.01")
        control(d, "reset").click()
        control(d, "step").click()
        s = wait_for(d, lambda s: s["error"] is None and s["step"] > 0, 20, "training again after reset")
        if conv:  # four blocks on 8 x 8 digits: the fourth, on one pixel, does not pool (nn.ConvNet), so they fit
            layers.clear()
            layers.send_keys("8, 8, 8, 8\t")
            wait_for(d, lambda s: s["error"] is None and s["params"]["channels"] == [8, 8, 8, 8], 10,
                     "four blocks accepted")
        assert [e for e in d.get_log("browser") if e["level"] == "SEVERE"] == []
        print(f"held-out accuracy >= 95% after {took:.1f} s of play")
    finally:
        out, err = stop_playground(proc)
    assert proc.returncode == 0 and "Traceback" not in err, err


@pytest.mark.skipif(not os.environ.get("PLAYGROUND_CIFAR10"), reason="set PLAYGROUND_CIFAR10 to a CIFAR-10 --data "
                    "spec (e.g. cifar10:/work/shared/data/cifar10-train-jpeg.tar.gz) to train on it in the browser")
def test_cifar10_trains_in_the_page(browser, tmp_path):  # noqa: F811
    proc, url = start_playground("--data", os.environ["PLAYGROUND_CIFAR10"])
    d = browser
    try:
        d.get(url)
        images_mode(d, "cifar10", "mlp")
        control(d, "play").click()
        s = wait_for(d, lambda s: s["step"] >= 2500 and (s["test_accuracy"] or 0) > 0.25, 500,
                     "CIFAR-10 training well above chance (10%)")
        time.sleep(0.5)
        shot = tmp_path / "cifar10.png"
        assert d.save_screenshot(str(shot))
        if os.environ.get("PLAYGROUND_CIFAR10_SCREENSHOT"):
            shutil.copyfile(shot, os.environ["PLAYGROUND_CIFAR10_SCREENSHOT"])
        print(f"CIFAR-10: step {s['step']}, held-out accuracy {s['test_accuracy']:.3f}")
    finally:
        out, err = stop_playground(proc)
    assert proc.returncode == 0 and "Traceback" not in err, err
