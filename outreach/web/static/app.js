// The queue without reloads, and keyboard moves. Every form also works as a plain POST without this file.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
  const toastBox = document.getElementById("toast");
  let toastTimer = null;

  function toast(text, isError) {
    if (!toastBox) return;
    toastBox.textContent = text;
    toastBox.classList.toggle("error", !!isError);
    toastBox.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { toastBox.hidden = true; }, isError ? 6000 : 3000);
  }

  function cards() { return Array.from(document.querySelectorAll("article.touch")); }

  function refreshCount() {
    const count = document.getElementById("pending-count");
    const left = cards().length;
    if (count) count.textContent = String(left);
    const empty = document.getElementById("empty");
    const bulk = document.getElementById("bulk");
    if (empty) empty.hidden = left > 0;
    if (bulk) bulk.hidden = left === 0;
    updatePicked();
  }

  function removeCards(ids) {
    const current = document.querySelector("article.touch.current");
    let next = null;
    if (current && ids.includes(Number(current.dataset.touch))) {
      const all = cards();
      const rest = all.filter((c) => !ids.includes(Number(c.dataset.touch)));
      next = rest.find((c) => all.indexOf(c) > all.indexOf(current)) || rest[rest.length - 1] || null;
    }
    ids.forEach((id) => {
      const card = document.getElementById("touch-" + id);
      if (!card) return;
      card.classList.add("leaving");
      card.addEventListener("transitionend", () => { card.remove(); refreshCount(); }, { once: true });
      setTimeout(() => { if (card.isConnected) { card.remove(); refreshCount(); } }, 400);
    });
    if (next) focusCard(next);
  }

  async function send(form, submitter) {
    const body = new FormData(form, submitter);
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    try {
      // getAttribute: a field named "action" would shadow form.action
      const res = await fetch(form.getAttribute("action") || location.pathname, {
        method: "POST", body, credentials: "same-origin",
        headers: { "X-Requested-With": "fetch", "X-CSRF-Token": csrf, "Accept": "application/json" },
      });
      if (res.status === 401) { window.location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); return; }
      const data = await res.json().catch(() => ({}));
      if (!res.ok || !data.ok) { toast(data.detail || ("Failed (" + res.status + ")"), true); return; }
      toast(data.message || "Done");
      if (location.pathname === "/queue") removeCards(data.ids || []);
      else location.reload();
    } catch (err) {
      toast("The server did not answer: " + err, true);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement)) return;
    if (!form.hasAttribute("data-ajax") && !form.hasAttribute("data-ajax-bulk")) return;
    if (!window.fetch || !window.FormData) return;
    ev.preventDefault();
    send(form, ev.submitter || null);
  });

  // selection
  function updatePicked() {
    const boxes = Array.from(document.querySelectorAll(".pick-box"));
    const picked = boxes.filter((b) => b.checked).length;
    const label = document.getElementById("picked");
    if (label) label.textContent = picked ? picked + " selected" : "Select all";
    const all = document.getElementById("pick-all");
    if (all) { all.checked = picked > 0 && picked === boxes.length; all.indeterminate = picked > 0 && picked < boxes.length; }
  }
  document.addEventListener("change", (ev) => {
    const el = ev.target;
    if (el.id === "pick-all") document.querySelectorAll(".pick-box").forEach((b) => { b.checked = el.checked; });
    if (el.id === "pick-all" || el.classList?.contains("pick-box")) updatePicked();
    if (el.matches?.("select[data-autosubmit]") && el.form) el.form.submit();
  });

  // keyboard: j/k move, a approve, e edit, r reject, s snooze, x select
  function focusCard(card) {
    cards().forEach((c) => c.classList.remove("current"));
    if (!card) return;
    card.classList.add("current");
    card.focus({ preventScroll: true });
    card.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }
  function openDrawer(card, name) {
    const d = card.querySelector('details[data-drawer="' + name + '"]');
    if (!d) return;
    d.open = true;
    const field = d.querySelector("input:not([type=hidden]), textarea, select");
    if (field) field.focus();
  }
  document.addEventListener("click", (ev) => {
    const card = ev.target.closest?.("article.touch");
    if (card && !card.classList.contains("current")) { cards().forEach((c) => c.classList.remove("current")); card.classList.add("current"); }
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const tag = (ev.target.tagName || "").toLowerCase();
    if (ev.key === "Escape") {
      document.querySelectorAll("details[open]").forEach((d) => { d.open = false; });
      const cur = document.querySelector("article.touch.current");
      if (cur) cur.focus();
      return;
    }
    if (tag === "input" || tag === "textarea" || tag === "select" || ev.target.isContentEditable) return;
    const list = cards();
    if (!list.length) return;
    const current = document.querySelector("article.touch.current");
    const i = current ? list.indexOf(current) : -1;
    const act = {
      j: () => focusCard(list[Math.min(i + 1, list.length - 1)]),
      k: () => focusCard(list[Math.max(i - 1, 0)]),
      a: () => { const f = current?.querySelector('form[action$="/approve"]'); if (f) f.requestSubmit(); },
      e: () => current && openDrawer(current, "edit"),
      r: () => current && openDrawer(current, "reject"),
      s: () => current && openDrawer(current, "snooze"),
      x: () => { const b = current?.querySelector(".pick-box"); if (b) { b.checked = !b.checked; updatePicked(); } },
    }[ev.key];
    if (!act) return;
    ev.preventDefault();
    if (!current && ev.key !== "j" && ev.key !== "k") { focusCard(list[0]); return; }
    act();
  });

  updatePicked();
})();
