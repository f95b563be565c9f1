// The bench page: one card per slot, redrawn from each server-sent "bench" document.
// Record text may come from a device: it is only ever set as textContent, never as HTML.
"use strict";

const VERDICTS = {
  "factory-default": ["PASS", "pass"], "not-default": ["FAIL", "fail"],
  "unreachable": ["UNREACHABLE", "unreach"], "bench-fault": ["BENCH FAULT", "bench"],
  "interrupted": ["INTERRUPTED", "other"], "skipped": ["SKIPPED", "other"],
  "out-of-service": ["OUT OF SERVICE", "oos"],
};
let skewMs = 0;            // server clock minus ours: elapsed times use the server's clock

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function seconds(s) {
  if (s < 60) return s.toFixed(1) + " s";
  return Math.floor(s / 60) + " min " + String(Math.floor(s % 60)).padStart(2, "0") + " s";
}

function elapsedText(node) {
  const since = (Date.now() + skewMs - Date.parse(node.dataset.started)) / 1000;
  const bound = node.dataset.timeout;
  return seconds(Math.max(0, since)) + (bound ? " of " + seconds(Number(bound)) : "");
}

function unitList(unit) {
  const dl = el("dl", "unit");
  for (const [label, value] of [["MAC", unit.mac], ["serial", unit.serial], ["model", unit.model]]) {
    dl.append(el("dt", null, label), el("dd", label.toLowerCase(), value || "—"));
  }
  return dl;
}

function stepBlock(step) {
  const box = el("div", "step");
  box.append(el("div", "step-name", step.name));
  const elapsed = el("div", "elapsed");
  elapsed.dataset.started = step.started_at;
  if (step.timeout_s !== null) elapsed.dataset.timeout = step.timeout_s;
  elapsed.textContent = elapsedText(elapsed);
  box.append(elapsed);
  if (step.detail) box.append(el("div", "detail", step.detail));
  return box;
}

// An operator action: the X-Rig-Request header is what tells the server it is not a
// cross-site request (a form or a script elsewhere cannot send it without a preflight).
async function act(path, body, method = "POST") {
  const answer = await fetch(path, {
    method: method, credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-Rig-Request": "1"},
    body: body === null ? undefined : JSON.stringify(body),
  });
  if (!answer.ok) {
    let why = await answer.text();
    try { why = JSON.parse(why).detail; } catch (e) { /* plain text */ }
    window.alert("refused: " + (typeof why === "string" ? why : JSON.stringify(why)));
  }
  return answer.ok;
}

function clearButton(slot) {
  const button = el("button", "clear", "Clear…");
  button.addEventListener("click", async () => {
    const by = window.prompt("Slot " + slot + ": your name");
    if (!by) return;
    const why = window.prompt("What was fixed?");
    if (!why) return;
    await act("/api/slots/" + encodeURIComponent(slot) + "/clear", {by: by, why: why});
  });
  return button;
}

// The barcode field: a keyboard-wedge scanner types the serial or MAC and presses Enter. One
// input per slot, kept across redraws (the cards are rebuilt on every change), so a scan in
// progress is neither lost nor unfocused when a step is recorded meanwhile.
const pinInputs = new Map();

function pinInput(slot) {
  let input = pinInputs.get(slot);
  if (input) return input;
  input = el("input", "pin-input");
  input.id = "pin-" + slot;
  input.placeholder = "scan serial or MAC for the next run";
  input.autocomplete = "off";
  input.spellcheck = false;
  input.addEventListener("keydown", async (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    const code = input.value.trim();
    if (!code) return;
    if (await act("/api/slots/" + encodeURIComponent(slot) + "/pin", {code: code})) {
      input.value = "";
    }
  });
  pinInputs.set(slot, input);
  return input;
}

function pinBlock(c) {
  const box = el("div", "pin");
  if (c.pin) {
    const what = c.pin.serial ? "serial " + c.pin.serial : "MAC " + c.pin.mac;
    const shown = el("span", "pinned", "Next run expects " + what + " (" + c.pin.by + ")");
    shown.id = "pinned-" + c.slot;
    const clear = el("button", "unpin", "×");
    clear.title = "clear the pin";
    clear.addEventListener("click", () =>
      act("/api/slots/" + encodeURIComponent(c.slot) + "/pin", null, "DELETE"));
    box.append(shown, clear);
  }
  box.append(pinInput(c.slot));
  return box;
}

function wireControls() {
  document.getElementById("start").addEventListener("click", async () => {
    const by = window.prompt("Start a run: your name");
    if (!by) return;
    const method = document.getElementById("method").value || null;
    const text = document.getElementById("run-slots").value.trim();
    const slots = text ? text.split(",").map((s) => s.trim()).filter(Boolean) : null;
    await act("/api/runs", {by: by, method: method, slots: slots});
  });
  document.getElementById("stop").addEventListener("click", async () => {
    const by = window.prompt("Stop the run (as Ctrl-C): your name");
    if (by) await act("/api/runs/stop", {by: by});
  });
}

function card(c) {
  const node = el("section", "card state-" + c.state);
  node.id = "slot-" + c.slot;
  node.dataset.state = c.state;
  node.dataset.verdict = c.last ? c.last.verdict : "";
  const head = el("header");
  head.append(el("h2", null, "Slot " + c.slot), el("span", "state", c.state));
  node.append(head);
  const [label, cls] = c.last ? (VERDICTS[c.last.verdict] || [c.last.verdict, "other"])
                              : ["—", "none"];
  const verdict = el("div", "verdict v-" + cls, label);
  if (c.state === "running" || c.state === "waiting") {
    node.append(c.step ? stepBlock(c.step)
                       : el("div", "step-name", c.state === "waiting" ? "waiting" : "starting"));
    verdict.classList.add("previous");
    verdict.textContent = "last: " + label;
  }
  node.append(verdict);
  if (c.last && c.last.reason) node.append(el("div", "reason", c.last.reason));
  if (c.state === "out-of-service") {
    const oos = el("div", "oos-reason", "Out of service: " + c.health.reason);
    node.append(oos, clearButton(c.slot));
  }
  if (c.unit) node.append(unitList(c.unit));
  node.append(pinBlock(c));
  return node;
}

function render(doc) {
  document.getElementById("bench-name").textContent = doc.bench || "(no runs yet)";
  const main = document.getElementById("slots");
  const focused = document.activeElement;         // a pin field being typed into
  const keep = focused && focused.classList.contains("pin-input")
    ? [focused, focused.selectionStart, focused.selectionEnd] : null;
  main.replaceChildren(...doc.slots.map(card));
  if (keep && keep[0].isConnected) {
    keep[0].focus();
    keep[0].setSelectionRange(keep[1], keep[2]);
  }
}

function tick() {
  for (const node of document.querySelectorAll(".elapsed")) node.textContent = elapsedText(node);
}

function connect() {
  const live = document.getElementById("live");
  const source = new EventSource("/api/events");
  source.addEventListener("bench", (event) => {
    const message = JSON.parse(event.data);
    skewMs = Date.parse(message.server_time) - Date.now();
    render(message.bench);
    live.textContent = "live";
    live.className = "live on";
  });
  source.onerror = () => { live.textContent = "reconnecting…"; live.className = "live off"; };
}

setInterval(tick, 250);
wireControls();
connect();
