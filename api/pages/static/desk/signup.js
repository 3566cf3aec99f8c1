// The signup page: check camera frames against the enrollment gate live, take the photos that pass, sign up.
import { COLORS, cameraProblem, drawBoxes, grabFrame, postForm, signInLink, startCamera } from "./desk.js";

// What the person in front of the camera should do, by the gate's refusal code.
const GUIDANCE = {
  no_face: "No face in view: look at the camera.",
  multiple_faces: "Several faces in view: only the person signing up should be in the picture.",
  face_too_small: "The face is too small: come closer to the camera.",
  face_cut_off: "The face is at the edge of the picture: move to the middle, or step back a little.",
  low_detection_score: "The face is unclear: face the camera, with light on your face.",
  blurry: "The picture is blurry: hold still.",
};
const CHECK_PAUSE_MS = 150; // between one frame's answer and the next frame
// The pose each photo asks for (the server reads it from the landmarks): a template of three poses recognises a
// visitor's varied photos better than three alike. A guide, not a gate: any photo that passes can be taken.
const POSES = ["straight", "left", "right"];
const POSE_GUIDANCE = {
  straight: "look straight at the camera",
  left: "turn your head a little to your left",
  right: "turn your head a little to your right",
};

const form = document.getElementById("signup");
const video = document.getElementById("preview");
const overlay = document.getElementById("overlay");
const guide = document.getElementById("guide");
const takeButton = document.getElementById("take");
const submitButton = document.getElementById("submit");
const againButton = document.getElementById("again");
const count = document.getElementById("count");
const photoList = document.getElementById("photos");
const result = document.getElementById("result");
const photosNeeded = Number(form.dataset.photosNeeded);

let photos = []; // {blob, url}
let lastGood = null; // the newest frame that passed the gate
let busy = false; // signing up: the checks pause

function showGuide(text, ok, code) {
  guide.textContent = text;
  guide.classList.toggle("ok", ok);
  guide.dataset.code = code;
}

function refreshButtons() {
  const full = photos.length >= photosNeeded;
  if (busy || full) drawBoxes(overlay, { width: 1, height: 1 }, []); // the checks pause: no stale boxes
  takeButton.disabled = busy || full || lastGood === null;
  submitButton.disabled = busy || !full || !form.checkValidity();
  count.textContent = `${photos.length} of ${photosNeeded} photos`;
}

async function checkLoop() {
  for (;;) {
    if (!busy && photos.length < photosNeeded) {
      const frame = await grabFrame(video);
      const data = new FormData();
      data.append("file", frame.blob, "frame.jpg");
      const { status, body } = await postForm("/desk/check", data);
      if (status === 401) {
        guide.replaceChildren(signInLink("Signed out."));
        return;
      }
      if (status !== 200) {
        showGuide(body.error.message, false, body.error.code);
      } else {
        const code = body.ok ? "ok" : body.problem.code;
        lastGood = body.ok ? frame : null;
        const wanted = POSES[photos.length % POSES.length];
        guide.dataset.pose = body.pose || "";
        showGuide(
          !body.ok
            ? GUIDANCE[code] || body.problem.message
            : body.pose === wanted
              ? "Good: press Take photo."
              : `Good. For photo ${photos.length + 1}, ${POSE_GUIDANCE[wanted]}, then press Take photo.`,
          body.ok,
          code,
        );
        drawBoxes(
          overlay,
          frame,
          body.faces.map((box, i) => ({ box, color: i === body.chosen ? COLORS.good : COLORS.warn })),
        );
      }
      refreshButtons();
    }
    await new Promise((resolve) => setTimeout(resolve, CHECK_PAUSE_MS));
  }
}

function renderPhotos() {
  photoList.replaceChildren(
    ...photos.map((photo, i) => {
      const item = document.createElement("li");
      const image = document.createElement("img");
      image.src = photo.url;
      image.alt = `Photo ${i + 1}`;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = `Remove photo ${i + 1}`;
      remove.addEventListener("click", () => {
        URL.revokeObjectURL(photo.url);
        photos.splice(i, 1);
        renderPhotos();
        takeButton.focus();
      });
      item.append(image, remove);
      return item;
    }),
  );
  refreshButtons();
}

takeButton.addEventListener("click", () => {
  if (lastGood === null) return;
  photos.push({ blob: lastGood.blob, url: URL.createObjectURL(lastGood.blob) });
  lastGood = null; // the next photo is a later frame
  renderPhotos();
  if (photos.length >= photosNeeded) submitButton.focus();
});

form.addEventListener("input", refreshButtons);

function showResult(kind, text) {
  const paragraph = document.createElement("p");
  paragraph.className = kind;
  paragraph.textContent = text;
  result.replaceChildren(paragraph);
}

function describe(member) {
  return `${member.display_name} (${member.external_id})`;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  busy = true;
  refreshButtons();
  showResult("guide", "Signing up…");
  const data = new FormData(form);
  photos.forEach((photo, i) => data.append("file", photo.blob, `photo-${i + 1}.jpg`));
  const { status, body } = await postForm("/desk/members", data);
  if (status === 201 && body.outcome === "enrolled") {
    showResult("notice", `Enrolled: ${describe(body.member)}, with ${body.member.faces.length} photos.`);
  } else if (status === 201) {
    const others = body.possible_duplicate_of.map(describe).join(", ");
    showResult("notice", `Enrolled, and queued for review as a possible duplicate of ${others}: ${describe(body.member)}.`);
  } else if (body.error.code === "duplicate_face") {
    showResult("error", `Refused: this face is already enrolled as ${describe(body.error.details.member)}.`);
  } else if (status === 401) {
    result.replaceChildren(signInLink("Signed out; nothing was saved."));
  } else {
    const which = body.error.details.photo_index;
    showResult("error", `Not signed up: ${which === undefined ? "" : `photo ${which + 1}: `}${body.error.message}`);
  }
  againButton.hidden = false;
  againButton.focus();
});

againButton.addEventListener("click", () => {
  photos.forEach((photo) => URL.revokeObjectURL(photo.url));
  photos = [];
  form.reset();
  result.replaceChildren();
  againButton.hidden = true;
  busy = false;
  renderPhotos();
  document.getElementById("display_name").focus();
});

startCamera(video)
  .then(() => {
    showGuide("Looking for a face…", false, "starting");
    checkLoop();
  })
  .catch((error) => showGuide(cameraProblem(error), false, error.name === "InsecurePage" ? "insecure_page" : "no_camera"));
