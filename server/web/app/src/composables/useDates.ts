import { useI18n } from "vue-i18n";

// Dates and times in the interface language the person chose, not the browser's.
export function useDates() {
  const { locale } = useI18n();
  const dateTime = (value: string | null | undefined): string =>
    value ? new Date(value).toLocaleString(locale.value) : "";
  return { dateTime };
}
