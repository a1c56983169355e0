import { useI18n } from "vue-i18n";

// Browsers' date data differ: Chromium has no Albanian, and plain "sr" may mean
// Cyrillic. Each language names what it wants, then a day-first fallback, so a
// missing locale never falls back to the American month-first order.
const DATE_LOCALES: Record<string, string[]> = {
  en: ["en"],
  sq: ["sq", "en-GB"],
  sr: ["sr-Latn", "en-GB"],
};

// Dates and times in the interface language the person chose, not the browser's.
export function useDates() {
  const { locale } = useI18n();
  const dateTime = (value: string | null | undefined): string =>
    value ? new Date(value).toLocaleString(DATE_LOCALES[locale.value] ?? [locale.value]) : "";
  return { dateTime };
}
