// The service worker: makes {{title}} load without a network.
//
// - On install it saves the app shell (SHELL) in a cache named after VERSION.
// - Pages (HTML) come from the network first, so an edit shows on the next load; the last
//   copy is kept and used when the network fails. A page never seen offline gets
//   offline.html.
// - Everything else (scripts, styles, icons) comes from the cache first, then the network.
// - /api/ (routes.py) and /__hyper2web__/ (the server's live reload) are never cached.
//   (WebSockets, such as /api/messages/live, never pass through a service worker.)
//
// Change VERSION when you deploy: the new worker fills a new cache, and once it activates
// every other cache is deleted.
const VERSION = "v1";
const CACHE = "{{title}}-" + VERSION;
const OFFLINE_PAGE = "/offline.html";
const SHELL = [
  "/",
  "/index.html",
  "/app.js",
  "/style.css",
  "/manifest.webmanifest",
  OFFLINE_PAGE,
  "/icon-192.png",
  "/icon-512.png",
  "/icon-maskable-512.png",
];
const NEVER_CACHED = ["/api/", "/__hyper2web__/"];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (NEVER_CACHED.some((prefix) => url.pathname.startsWith(prefix))) return;
  const wantsPage = request.mode === "navigate" ||
    (request.headers.get("accept") || "").includes("text/html");
  event.respondWith(wantsPage ? networkFirst(request) : cacheFirst(request));
});

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (error) {
    return (await cache.match(request, { ignoreSearch: true })) ||
      (await cache.match(OFFLINE_PAGE)) ||
      Response.error();
  }
}

async function cacheFirst(request) {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok && response.type === "basic") await cache.put(request, response.clone());
  return response;
}
