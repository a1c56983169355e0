import { enc, getJson } from "../../api/client";
import { useResource } from "../../composables/useResource";

// What the caller may do in one project (Central's extended project metadata), to
// show only the actions that will work; the server checks every call anyway.
export function useProjectVerbs(projectId: () => number) {
  const project = useResource(() =>
    getJson<{ verbs?: string[] }>(`/v1/projects/${enc(projectId())}`, {
      "X-Extended-Metadata": "true",
    }),
  );
  const can = (verb: string): boolean => (project.data.value?.verbs ?? []).includes(verb);
  return { refresh: project.refresh, can };
}
