import { ref, type Ref } from "vue";
import { ApiError } from "../api/client";

// One API read for a view: its data, whether it is loading, and the error it met.
// Only the latest read lands: an earlier, slower answer (the unfiltered first page,
// say) never replaces the answer to what the person asked for since.
export function useResource<T>(load: () => Promise<T>) {
  const data = ref<T | null>(null) as Ref<T | null>;
  const error = ref<ApiError | null>(null);
  const loading = ref(false);
  let latest = 0;

  async function refresh(): Promise<void> {
    const asked = ++latest;
    loading.value = true;
    error.value = null;
    try {
      const loaded = await load();
      if (asked === latest) data.value = loaded;
    } catch (caught) {
      if (asked === latest)
        error.value =
          caught instanceof ApiError ? caught : new ApiError(0, null, String(caught), null);
    } finally {
      if (asked === latest) loading.value = false;
    }
  }

  return { data, error, loading, refresh };
}
