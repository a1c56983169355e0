import { createI18n } from "vue-i18n";
import en from "./locales/en.json";
import sq from "./locales/sq.json";
import sr from "./locales/sr.json";

export const LANGUAGES = [
  { code: "en", name: "English" },
  { code: "sq", name: "Shqip" },
  { code: "sr", name: "Srpski" },
] as const;

const stored = localStorage.getItem("homeward.locale");
const wanted = stored ?? navigator.language.slice(0, 2);
const locale = LANGUAGES.some((l) => l.code === wanted) ? wanted : "en";
document.documentElement.lang = locale;

// English is the source; a string missing in another language falls back to it.
export const i18n = createI18n({
  legacy: false,
  locale,
  fallbackLocale: "en",
  messages: { en, sq, sr },
});

export function setLocale(code: string): void {
  i18n.global.locale.value = code as "en";
  localStorage.setItem("homeward.locale", code);
  document.documentElement.lang = code;
}
