// The paraxl playground: vanilla JS against this server's own JSON API, no library, no build step.
// Text from the user or the API is only ever set with textContent, never parsed as HTML.
"use strict";

const state = { health: null };

function $(id) { return document.getElementById(id); }

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

// The API key of a server started with --api-key: typed into the page, kept in this tab's session
// storage (gone when the tab closes), sent only to this same origin.
const KEY_ITEM = "paraxl-api-key";

function authorization() {
  const key = sessionStorage.getItem(KEY_ITEM);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function askForKey() {
  $("key-form").hidden = false;
  $("api-key").focus();
}

function useKey(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (key) sessionStorage.setItem(KEY_ITEM, key); else sessionStorage.removeItem(KEY_ITEM);
  $("api-key").value = "";
  $("key-form").hidden = true;
  showError("");
}

// POST/GET JSON; an error answer becomes an Error with the API's one-line message (never a raw throw).
async function api(path, body) {
  const options = body === undefined ? { headers: authorization() } : {
    method: "POST",
    headers: { "Content-Type": "application/json", ...authorization() },
    body: JSON.stringify(body),
  };
  let response;
  try {
    response = await fetch(path, options);
  } catch (problem) {
    throw new Error(`cannot reach the server (${problem.message})`);
  }
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (response.status === 401) {
    askForKey();
    throw new Error("This server needs an API key: type it in the field above, then try again.");
  }
  if (!response.ok) {
    const reason = data && (typeof data.error === "string" ? data.error : data.error && data.error.message);
    throw new Error(`${path} answered ${response.status}: ${reason || response.statusText}`);
  }
  return data;
}

function cosine(a, b) {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

// darker blue for higher similarity; negative scores stay white
function shade(cell, score) {
  const s = Math.max(0, Math.min(1, score));
  cell.style.backgroundColor = `hsl(215, 65%, ${Math.round(100 - 55 * s)}%)`;
  cell.style.color = s > 0.6 ? "#fff" : "#111";
}

function label(i) { return `#${i + 1}`; }

function crossEncoder() { return Boolean(state.health && state.health.kind === "cross_encoder"); }

// scoreOf(i, j): the score of sentence i against sentence j
function renderMatrix(sentences, scoreOf, caption) {
  const table = element("table");
  table.append(element("caption", caption));
  const head = element("tr");
  head.append(element("th", "Sentence"));
  sentences.forEach((_, j) => { const th = element("th", label(j)); th.scope = "col"; head.append(th); });
  const thead = element("thead"); thead.append(head); table.append(thead);
  const tbody = element("tbody");
  sentences.forEach((sentence, i) => {
    const row = element("tr");
    const th = element("th", `${label(i)} ${sentence}`, "sentence"); th.scope = "row"; row.append(th);
    sentences.forEach((_, j) => {
      const score = scoreOf(i, j);
      const td = element("td", score.toFixed(2));
      td.title = `${label(i)} vs ${label(j)}: ${score.toFixed(4)}`;
      shade(td, score);
      row.append(td);
    });
    tbody.append(row);
  });
  table.append(tbody);
  $("matrix").replaceChildren(table);
}

// a cross-encoder gives no vectors: it reads each ordered pair, so n x n scores through /similarity
async function crossEncoderScores(sentences) {
  const pairs = [];
  sentences.forEach((first) => sentences.forEach((second) => pairs.push([first, second])));
  const most = state.health.limits.max_batch;
  const scores = [];
  for (let start = 0; start < pairs.length; start += most) {
    const answer = await api("/similarity", { pairs: pairs.slice(start, start + most) });
    scores.push(...answer.scores);
  }
  const n = sentences.length;
  return sentences.map((_, i) => scores.slice(i * n, (i + 1) * n));
}

async function renderDecisions(sentences) {
  const target = $("decisions");
  const calibration = state.health && state.health.calibration;
  if (!calibration) {
    target.replaceChildren(element("p", "This server has no calibration, so it makes no paraphrase decisions.", "hint"));
    return;
  }
  const pairs = [];
  for (let i = 0; i < sentences.length; i++) {
    for (let j = i + 1; j < sentences.length; j++) pairs.push([i, j]);
  }
  const most = state.health.limits.max_batch;
  const results = [];
  for (let start = 0; start < pairs.length; start += most) {
    const chunk = pairs.slice(start, start + most).map(([i, j]) => [sentences[i], sentences[j]]);
    const answer = await api("/paraphrase", { pairs: chunk });
    results.push(...answer.results);
  }
  const table = element("table");
  table.append(element("caption", `Paraphrase decisions (${calibration.method}, threshold ${calibration.threshold.toFixed(3)})`));
  const head = element("tr");
  for (const name of ["Pair", "Score", "Probability", "Paraphrase?"]) {
    const th = element("th", name); th.scope = "col"; head.append(th);
  }
  const thead = element("thead"); thead.append(head); table.append(thead);
  const tbody = element("tbody");
  results.forEach((result, n) => {
    const [i, j] = pairs[n];
    const row = element("tr");
    row.append(element("td", `${label(i)} – ${label(j)}`));
    row.append(element("td", result.score.toFixed(3)));
    row.append(element("td", result.probability === null ? "–" : result.probability.toFixed(3)));
    row.append(element("td", result.is_paraphrase ? "yes" : "no", result.is_paraphrase ? "yes" : "no"));
    tbody.append(row);
  });
  table.append(tbody);
  target.replaceChildren(table);
}

async function compare(event) {
  event.preventDefault();
  showError("");
  const sentences = $("sentences").value.split("\n").map((line) => line.trim()).filter((line) => line);
  if (sentences.length < 2) {
    showError("Type at least two sentences, one per line.");
    return;
  }
  try {
    if (crossEncoder()) {
      const rows = await crossEncoderScores(sentences);
      renderMatrix(sentences, (i, j) => rows[i][j], "Cross-encoder score of (row, column) (1 = same meaning)");
    } else {
      const vectors = (await api("/embed", { texts: sentences })).embeddings;
      renderMatrix(sentences, (i, j) => cosine(vectors[i], vectors[j]), "Cosine similarity (1 = same meaning)");
    }
    await renderDecisions(sentences);
  } catch (problem) {
    showError(problem.message);
  }
}

async function search(event) {
  event.preventDefault();
  showError("");
  const query = $("query").value.trim();
  if (!query) {
    showError("Type a query to search for.");
    return;
  }
  try {
    const k = Math.min(5, state.health.limits.max_k);
    const answer = await api("/search", { query, k });
    const table = element("table");
    table.append(element("caption", `Best ${k} hits for “${query}”`));
    const head = element("tr");
    for (const name of ["Rank", "Score", "Id", "Text"]) {
      const th = element("th", name); th.scope = "col"; head.append(th);
    }
    const thead = element("thead"); thead.append(head); table.append(thead);
    const tbody = element("tbody");
    for (const hit of answer.results[0]) {
      const row = element("tr");
      row.append(element("td", String(hit.rank)));
      row.append(element("td", hit.score.toFixed(3)));
      row.append(element("td", hit.id));
      row.append(element("td", hit.text === null ? "(no text stored)" : hit.text));
      tbody.append(row);
    }
    table.append(tbody);
    $("hits").replaceChildren(table);
  } catch (problem) {
    showError(problem.message);
  }
}

async function start() {
  $("compare-form").addEventListener("submit", compare);
  $("search-form").addEventListener("submit", search);
  $("key-form").addEventListener("submit", useKey);
  try {
    const health = await api("/health");
    state.health = health;
    const decides = health.calibration ? `decides paraphrases (${health.calibration.method})` : "no calibration";
    const kind = crossEncoder() ? "a cross-encoder: pairs only" : `${health.dimension} dimensions`;
    $("server").textContent = `Serving model ${health.model} (${kind}, ${health.backend || "torch"}); ${decides}.`;
    if (crossEncoder()) {
      $("query-hint").textContent = "A cross-encoder gives no embeddings: serve a bi-encoder with --index DIR to search.";
    } else if (health.index) {
      $("query-hint").textContent = `An index of ${health.index.count} texts is served.`;
      $("query").disabled = false;
      $("search-button").disabled = false;
    } else {
      $("query-hint").textContent = "No index is served: restart the server with --index DIR to search.";
    }
  } catch (problem) {
    $("server").textContent = "The server did not answer /health.";
    showError(problem.message);
  }
}

document.addEventListener("DOMContentLoaded", start);
