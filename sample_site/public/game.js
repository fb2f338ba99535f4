// A tiny game: click (or tap) the dot before it moves. Scores come from routes.py.
const canvas = document.getElementById("board");
const ctx = canvas.getContext("2d");
const scoreOut = document.getElementById("score");
let score = 0;
let dot = { x: 160, y: 100, r: 14 };

function draw() {
  ctx.fillStyle = "#111827";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.beginPath();
  ctx.arc(dot.x, dot.y, dot.r, 0, Math.PI * 2);
  ctx.fillStyle = "#ffd166";
  ctx.fill();
}

function move() {
  dot.x = dot.r + Math.random() * (canvas.width - 2 * dot.r);
  dot.y = dot.r + Math.random() * (canvas.height - 2 * dot.r);
  draw();
}

canvas.addEventListener("pointerdown", (event) => {
  const box = canvas.getBoundingClientRect();
  const x = ((event.clientX - box.left) * canvas.width) / box.width;
  const y = ((event.clientY - box.top) * canvas.height) / box.height;
  if (Math.hypot(x - dot.x, y - dot.y) <= dot.r * 1.5) {
    score += 1;
    scoreOut.value = score;
    move();
  }
});

async function showTop10() {
  const list = document.getElementById("top10");
  try {
    const response = await fetch("/top10");
    const records = await response.json();
    list.replaceChildren(...records.map((r) => {
      const item = document.createElement("li");
      item.textContent = `${r.name}: ${r.score}`;
      return item;
    }));
  } catch (error) {
    list.textContent = "no scores yet";
  }
}

setInterval(move, 1500);
draw();
showTop10();
