// hyper2web live reload client: listens to /__hyper2web__/events on the page's own connection.
(() => {
  "use strict";
  if (window.__hyper2webReload) return;
  const state = (window.__hyper2webReload = { bootId: null, reloading: false });
  const OVERLAY_ID = "__hyper2web_overlay";

  // A cache-first service worker would answer the reload from its cache: drop the changed
  // URLs from every cache first, and let an updated worker take control before reloading.
  async function forgetCached(paths) {
    if (!paths || !paths.length || !("caches" in window)) return;
    const wanted = new Set(paths);
    for (const name of await caches.keys()) {
      const cache = await caches.open(name);
      for (const request of await cache.keys()) {
        if (wanted.has(new URL(request.url).pathname)) await cache.delete(request);
      }
    }
  }

  // A changed worker script (or a reload of everything) asks its registration to update,
  // and the reload waits for the new worker to take control. Only then: right after a
  // navigation, update() waits for the browser's own delayed update check (over a second).
  async function updateWorkers(paths) {
    if (!("serviceWorker" in navigator)) return;
    const changed = new Set(paths);
    const scriptChanged = (registration) =>
      [registration.installing, registration.waiting, registration.active].some(
        (worker) => worker && changed.has(new URL(worker.scriptURL).pathname));
    const registrations = (await navigator.serviceWorker.getRegistrations()).filter(
      (registration) => !paths.length || scriptChanged(registration));
    if (!registrations.length) return;
    await Promise.all(registrations.map((r) => r.update().catch(() => {})));
    const pending = registrations.some((r) => r.installing || r.waiting);
    if (pending && navigator.serviceWorker.controller) {
      await new Promise((resolve) => {
        navigator.serviceWorker.addEventListener("controllerchange", resolve, { once: true });
        setTimeout(resolve, 1500);
      });
    }
  }

  async function reload(paths) {
    if (state.reloading) return;
    state.reloading = true;
    // The event stream may pass through the old service worker, whose fetches in flight
    // keep a new worker from activating: close it before waiting for one.
    source.close();
    try {
      await forgetCached(paths);
      await updateWorkers(paths);
    } catch (error) {
      console.debug("hyper2web: reload preparation failed", error);
    }
    location.reload();
  }

  function swapStylesheets(paths) {
    const wanted = new Set(paths);
    let swapped = 0;
    for (const link of document.querySelectorAll('link[rel~="stylesheet"][href]')) {
      const url = new URL(link.href, location.href);
      if (url.origin !== location.origin || !wanted.has(url.pathname)) continue;
      url.searchParams.set("__hyper2web", Date.now().toString(36));
      // Load the new sheet next to the old one and remove the old one once it applies:
      // the page never shows unstyled content.
      const fresh = link.cloneNode();
      fresh.href = url.pathname + url.search + url.hash;
      fresh.addEventListener("load", () => link.remove(), { once: true });
      fresh.addEventListener("error", () => fresh.remove(), { once: true });
      link.after(fresh);
      swapped += 1;
    }
    if (!swapped) reload(paths);
  }

  function showOverlay(message) {
    hideOverlay();
    const box = document.createElement("div");
    box.id = OVERLAY_ID;
    box.setAttribute("role", "alert");
    box.style.cssText =
      "position:fixed;inset:0;z-index:2147483647;background:#111;color:#fff;" +
      "font:14px/1.5 ui-monospace,monospace;padding:2rem;overflow:auto;white-space:pre-wrap";
    const title = document.createElement("div");
    title.style.cssText = "color:#ff6b6b;font-weight:bold;font-size:16px;margin-bottom:1rem";
    title.textContent = "hyper2web: server error";
    const text = document.createElement("div");
    text.textContent = message;
    box.append(title, text);
    (document.body || document.documentElement).append(box);
  }

  function hideOverlay() {
    const box = document.getElementById(OVERLAY_ID);
    if (box) box.remove();
  }

  const source = new EventSource("/__hyper2web__/events");
  source.addEventListener("hello", (event) => {
    const data = JSON.parse(event.data);
    if (state.bootId && data.id !== state.bootId) {
      reload([]); // the server restarted while we were away
      return;
    }
    state.bootId = data.id;
    if (data.error) showOverlay(data.error);
    else hideOverlay();
  });
  source.addEventListener("reload", (event) => reload(JSON.parse(event.data).paths || []));
  source.addEventListener("css", (event) => swapStylesheets(JSON.parse(event.data).paths || []));
  source.addEventListener("error", (event) => {
    // The server's "error" events carry data; the EventSource's own connection errors don't
    // (it reconnects by itself).
    if (event.data) showOverlay(JSON.parse(event.data).message || event.data);
  });
})();
