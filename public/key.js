// The key form: asking for a key, remembering and forgetting it, and sending a refused key back to the form.
import { $, ApiError, explain } from "./plot.js";
import { state, setKey } from "./state.js";
import { rerender, showOnly } from "./route.js";

export function askKey(message) {
  showOnly("login");
  $("login-error").textContent = message || "";
  $("login-error").hidden = !message;
  $("forget").hidden = !state.key;
  $("key-form").key.focus();
}

$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  setKey(e.target.key.value.trim());
  e.target.key.value = "";
  rerender();
});

$("forget").addEventListener("click", () => {
  setKey("");
  askKey("The key was removed from this browser.");
});

/** Errors that concern the key send the person back to the key form with the reason; others go to the banner. */
export function failed(e, where) {
  if (e instanceof ApiError && (e.status === 401 || (e.status === 403 && where === "list"))) {
    askKey(
      e.status === 401
        ? "This key was not accepted (401 unauthorized): it is wrong or has been revoked. Enter another key."
        : `This key may not read charts (403 forbidden): ${e.message}. Use a read key or the admin token.`,
    );
    return true;
  }
  $("banner").textContent = `${explain(e)}${e.status === 0 ? " Retrying every 30 s." : ""}`;
  $("banner").hidden = false;
  return false;
}
