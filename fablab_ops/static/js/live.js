// The live machines page updates itself: every 30 s it fetches the board (an HTML fragment from the same
// site) and puts it in place, keeping open tables open. Only changes of a machine's state or alerts are
// announced, in one polite message, so a screen reader is not interrupted every half minute.
(function () {
  "use strict";
  const board = document.getElementById("live-board");
  const announcer = document.getElementById("live-announcer");
  if (!board || !announcer || !window.fetch) {
    return;
  }
  const every = (parseInt(board.dataset.every, 10) || 30) * 1000;
  let failing = false;

  function snapshot() {
    const seen = {};
    board.querySelectorAll("[data-machine]").forEach((card) => {
      const state = card.querySelector(".state-badge");
      const alerts = card.querySelector(".live-alerts");
      seen[card.dataset.machine] = {
        name: card.dataset.name,
        state: state ? state.textContent.trim() : "",
        alerts: alerts ? alerts.textContent.replace(/\s+/g, " ").trim() : "",
      };
    });
    return seen;
  }

  function changes(before, after) {
    const said = [];
    Object.keys(after).forEach((key) => {
      const old = before[key];
      const now = after[key];
      if (!old) {
        return;
      }
      if (old.state !== now.state) {
        said.push(now.name + ": " + now.state);
      }
      if (old.alerts !== now.alerts) {
        said.push(now.name + ": " + now.alerts);
      }
    });
    return said;
  }

  async function refresh() {
    if (document.hidden) {
      return;
    }
    try {
      const response = await fetch(board.dataset.source, {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
        cache: "no-store",
      });
      if (!response.ok) {
        throw new Error(String(response.status));
      }
      const html = await response.text();
      const before = snapshot();
      const open = Array.from(board.querySelectorAll("details[open]")).map((d) => d.closest("[id]").id);
      const focused = document.activeElement && board.contains(document.activeElement)
        ? document.activeElement.closest("[id]") : null;
      const focusedId = focused ? focused.id : null;
      board.innerHTML = html;
      open.forEach((id) => {
        const holder = document.getElementById(id);
        const details = holder && holder.querySelector("details");
        if (details) {
          details.open = true;
        }
      });
      if (focusedId) {
        const again = document.getElementById(focusedId);
        const target = again && again.querySelector("summary, a, [tabindex]");
        if (target) {
          target.focus({ preventScroll: true });
        }
      }
      const said = changes(before, snapshot());
      if (said.length || failing) {
        announcer.textContent = said.join(". ");
      }
      failing = false;
    } catch (error) {
      if (!failing) {
        announcer.textContent = board.dataset.failed || "";
      }
      failing = true;
    }
  }

  window.setInterval(refresh, every);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) {
      refresh();
    }
  });
}());
