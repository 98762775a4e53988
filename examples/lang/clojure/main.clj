;; The Clojure entry of the language matrix: run as a script by clojure.main.
(ns main
  (:require [clojure.string :as str]))

(let [name (or (first *command-line-args*) "nobody")
      greeting (or (System/getenv "GREETING") "Hi")
      greet (fn [who] (str greeting ", " who "!"))
      fruits ["pear" "fig" "banana" "apple" "kiwi"]
      kept (->> fruits (filter #(> (count %) 3)) (map str/upper-case) sort)
      average (/ (double (reduce + (map count kept))) (count kept))]
  (println (str (greet name) " (Clojure)"))
  (println (str "fruits: " (str/join ", " kept)))
  (println (format "average length: %.2f" average))
  (binding [*out* *err*]
    (println "Clojure: exiting with status 3"))
  (flush)
  (System/exit 3))
