// Talks to the handlers in routes.py.
const scores = document.getElementById("scores");

async function showTop() {
  const response = await fetch("/api/top/3");
  const top = await response.json();
  scores.textContent = top.length
    ? top.map((r) => `${r.name} (${r.score})`).join(", ")
    : "none yet";
}

document.getElementById("record").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  await fetch("/api/scores", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: form.get("name"), score: Number(form.get("score")) }),
  });
  event.target.reset();
  showTop();
});

showTop();
